"""Issue 14: SEC-002 sees credential files at every depth of the run's and the model's artifacts
(real MLflow server); the walk costs one request per directory and stops at the policy's
``max_artifact_dirs``, recording what it did not list (EVD-008's evidence)."""

from __future__ import annotations

from shared.evidence.collect import collect_version
from shared.evidence.registry import RegistryClient
from shared.evidence.tree import ListingBudget, list_tree
from tests.engine.conftest import rule_ids

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"


def test_credential_files_below_the_top_level_are_found(kit, check):
    trained = kit.model_version(
        "churn-nested-creds",
        artifacts={"deploy/ssh/id_rsa": KEY, "certs/client.pem": KEY, "reports/summary.txt": "auc 0.93"},
        code_files={"credentials.json": '{"note": "a credential file by its name"}', "train.py": "print(1)\n"})
    report = check(trained)
    locations = {f["evidence"]["location"] for f in report["findings"] if f["rule_id"] == "SEC-002"}
    assert locations == {"run artifacts/deploy/ssh/id_rsa", "run artifacts/certs/client.pem",
                         "model artifacts/code/credentials.json"}
    assert "SEC-002" in rule_ids(report) and report["verdict"] == "fail"


def test_the_common_case_costs_one_request_per_directory(kit, check, proxy):
    """A model directory with only ``code/`` below it: today's 6 requests plus one for ``code/``."""
    trained = kit.model_version("churn-code-dir", code_files={"train.py": "print(1)\n"})
    proxy.reset()
    report = check(trained)
    listed = [path for _, path in proxy.requests if "/mlflow-artifacts/artifacts?" in path]  # a list, not a download
    assert proxy.count() == 7, proxy.requests
    assert len(listed) == 3  # model root, model code/, run root
    assert "SEC-002" not in rule_ids(report)


def test_the_bound_stops_the_walk_and_says_so(kit, registry):
    trained = kit.model_version("churn-deep-tree", artifacts={f"d{i}/x/f.txt": "x" for i in range(3)})
    client = RegistryClient(registry)
    evidence = collect_version(client, trained.model, trained.version, max_artifact_dirs=4)
    run_location = evidence.run.artifact_uri
    # model root (1) + run root (1) + two of the run's directories: the rest is not listed
    (cut,) = evidence.unreadable
    assert cut.location == run_location
    assert "not listed" in cut.what and "max_artifact_dirs" in cut.fix
    assert sum(1 for f in evidence.run.artifacts if f.endswith("/")) < 6

    full = collect_version(RegistryClient(registry), trained.model, trained.version)
    assert full.unreadable == []
    assert {"d0/x/f.txt", "d1/x/f.txt", "d2/x/f.txt"} <= set(full.run.artifacts)


def test_list_tree_gives_relative_paths_and_counts_its_requests(kit, registry):
    run_id = kit.run(artifacts={"a.txt": "1", "deploy/ssh/id_rsa": KEY})
    client = RegistryClient(registry)
    location = client.get_run(run_id).artifact_uri
    before = client.requests
    budget = ListingBudget(10)
    assert list_tree(client, location, budget) == ["a.txt", "deploy/", "deploy/ssh/", "deploy/ssh/id_rsa"]
    assert client.requests - before == 3 and budget.unreadable() == []
