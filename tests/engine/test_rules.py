"""Every rule of the catalog fires on real registry data that breaks it, and stays quiet on data that does not."""

from __future__ import annotations

import pytest

from shared.engine import Engine
from shared.jobs import JobRun
from shared.policy import load_policy
from shared.report import Trigger
from shared.rules import catalog
from tests.engine.conftest import rule_ids

PROMOTE = {"alias": "champion"}

# rule id -> (scenario that must fire it, check kwargs), (scenario that must not, check kwargs)
CASES = {
    "LIN-001": (("no_run", {}), ("clean", {})),
    "LIN-002": (("failed_run", {}), ("clean", {})),
    "LIN-003": (("deleted_run", {}), ("clean", {})),
    "LIN-004": (("no_git", {}), ("clean", {})),
    "LIN-005": (("no_dataset", {}), ("clean", {})),
    "LIN-006": (("notebook", {}), ("clean", {})),
    "LIN-007": (("failed_registration", {}), ("clean", {})),
    "EVD-004": (("no_signature", {}), ("clean", {})),
    "EVD-005": (("no_env", {}), ("clean", {})),
    "EVD-006": (("no_run", {}), ("clean", {})),
    "EVD-007": (("no_owner", {}), ("clean", {})),
    "EVD-008": (("unreadable", {}), ("clean", {})),
    "GOV-001": (("unapproved", PROMOTE), ("approved", PROMOTE)),
    "GOV-002": (("self_approved", PROMOTE), ("approved", PROMOTE)),
    "GOV-003": (("regressed", PROMOTE), ("approved", PROMOTE)),
    "GOV-004": (("first_promo", PROMOTE), ("approved", PROMOTE)),
    "GOV-005": (("stale", PROMOTE), ("approved", PROMOTE)),
    "SEC-001": (("cred_param", {}), ("clean", {})),
    "SEC-002": (("cred_file", {}), ("clean", {})),
}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_evidence_that_breaks_it(rule_id, scenarios, check, store):
    (name, kwargs), _ = CASES[rule_id]
    _record_passing_registration(check, store, scenarios[name], kwargs)
    report = check(scenarios[name], **kwargs)
    assert rule_id in rule_ids(report), report["findings"]


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_is_quiet_on_evidence_that_satisfies_it(rule_id, scenarios, check, store):
    _, (name, kwargs) = CASES[rule_id]
    _record_passing_registration(check, store, scenarios[name], kwargs)
    report = check(scenarios[name], **kwargs)
    assert rule_id not in rule_ids(report), report["findings"]


def _record_passing_registration(check, store, trained, kwargs):
    """Promotions are checked after a registration report exists (GOV-006 is tested on its own)."""
    if kwargs:
        registration = check(trained)
        registration["verdict"] = "pass" if registration["verdict"] == "fail" else registration["verdict"]
        store.save(registration)


def test_clean_version_passes_with_no_findings(scenarios, check):
    report = check(scenarios["clean"])
    assert report["verdict"] == "pass"
    assert report["findings"] == []


def test_approved_promotion_with_history_passes(scenarios, check, store):
    store.save(check(scenarios["approved"]))
    report = check(scenarios["approved"], alias="champion")
    assert report["check"] == "promotion"
    assert report["verdict"] == "pass", report["findings"]


def test_promotion_severities_are_stricter(scenarios, check, store):
    registration = check(scenarios["notebook"])
    severities = {f["rule_id"]: f["severity"] for f in registration["findings"]}
    assert severities["LIN-006"] == "info"
    nogit = {f["rule_id"]: f["severity"] for f in check(scenarios["no_git"])["findings"]}
    assert nogit["LIN-004"] == "warning"
    promoted = {f["rule_id"]: f["severity"] for f in check(scenarios["no_git"], alias="champion")["findings"]}
    assert promoted["LIN-004"] == "error"
    promoted = {f["rule_id"]: f["severity"] for f in check(scenarios["notebook"], alias="champion")["findings"]}
    assert promoted["LIN-006"] == "error"


def test_unprotected_alias_is_a_registration_check(scenarios, check):
    report = check(scenarios["unapproved"], alias="staging")
    assert report["check"] == "registration"
    assert report["subject"]["alias"] == "staging"
    assert "GOV-001" not in rule_ids(report)


def test_gov_006_without_and_with_a_passing_registration_report(scenarios, check, store):
    before = check(scenarios["approved"], alias="champion")
    assert "GOV-006" in rule_ids(before)
    store.save(check(scenarios["approved"]))
    after = check(scenarios["approved"], alias="champion")
    assert "GOV-006" not in rule_ids(after)


def test_gov_005_newer_version_already_passed(scenarios, check, store):
    store.save(check(scenarios["approved"]))
    store.save(check(scenarios["unapproved"]))  # a newer version of churn-promo that passes registration
    report = check(scenarios["approved"], alias="champion")
    messages = [f["message"] for f in report["findings"] if f["rule_id"] == "GOV-005"]
    assert any("already passed the gate" in m for m in messages), report["findings"]


def test_gov_003_regression_names_metric_and_previous_holder(scenarios, check, store):
    report = check(scenarios["regressed"], alias="champion")
    finding = next(f for f in report["findings"] if f["rule_id"] == "GOV-003")
    assert finding["evidence"]["metric"] == "accuracy"
    assert finding["evidence"]["previous_version"] == scenarios["champion"].version


def test_previous_holder_comes_from_history_once_the_alias_moved(scenarios, check, store, kit):
    # Observe the champion while it is held by v1, then move the alias as a promotion event would.
    check(scenarios["approved"], alias="champion")
    kit.client.set_registered_model_alias("churn-promo", "champion", scenarios["regressed"].version)
    try:
        report = check(scenarios["regressed"], alias="champion")
    finally:
        kit.client.set_registered_model_alias("churn-promo", "champion", scenarios["champion"].version)
    finding = next(f for f in report["findings"] if f["rule_id"] == "GOV-003")
    assert finding["evidence"]["previous_version"] == scenarios["champion"].version


def test_lin_003_when_the_registry_confirms_the_run_is_missing(scenarios, check):
    report = check(scenarios["missing_run"])
    finding = next(f for f in report["findings"] if f["rule_id"] == "LIN-003")
    assert "does not exist" in finding["message"]


def test_lin_007_does_not_pile_up_artifact_findings(scenarios, check):
    report = check(scenarios["failed_registration"])
    assert rule_ids(report) == {"LIN-007"}


@pytest.mark.parametrize("name, resolved_by", [
    ("clean", "version.run_id"),
    ("no_run_id", "logged_model"),
    ("artifact_path", "log_model_history"),
    ("runs_uri", "runs_uri"),
])
def test_source_run_is_resolved_for_every_version_shape(name, resolved_by, scenarios, registry, store):
    from shared.evidence.collect import collect_version
    from shared.evidence.registry import RegistryClient

    trained = scenarios[name]
    evidence = collect_version(RegistryClient(registry), trained.model, trained.version, history=store)
    assert evidence.run_resolved_by == resolved_by
    assert evidence.run.run_id == trained.run_id
    assert evidence.model_artifacts.found


def test_required_param_and_metrics_from_a_scoped_policy(scenarios, registry, store, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: strict\n"
        "required_params: [learning_rate]\n"
        "scopes:\n"
        "  - name: credit\n"
        "    models: ['credit-*']\n"
        "    required_params: [random_seed]\n"
        "    required_metrics: {auc: {min: 0.8}, f1: {min: 0.5}}\n"
    )
    engine = Engine(load_policy(str(policy)), store)
    credit = engine.check_version(registry, "credit-risk", scenarios["metrics"].version, trigger=Trigger("cli", "check"))
    by_rule = {}
    for f in credit["findings"]:
        by_rule.setdefault(f["rule_id"], []).append(f)
    assert [f["evidence"]["param"] for f in by_rule["EVD-001"]] == ["random_seed"]
    assert [f["evidence"]["metric"] for f in by_rule["EVD-002"]] == ["f1"]
    assert by_rule["EVD-003"][0]["evidence"] == {"metric": "auc", "value": 0.71, "min": 0.8}
    assert credit["policy"]["scopes"] == ["credit"]
    churn = engine.check_version(registry, "churn-clean", scenarios["clean"].version, trigger=Trigger("cli", "check"))
    assert not {"EVD-001", "EVD-002", "EVD-003"} & rule_ids(churn)
    assert churn["policy"]["scopes"] == []


def test_metric_above_its_maximum(scenarios, registry, store, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("required_metrics: {accuracy: {max: 0.5}}\n")
    report = Engine(load_policy(str(policy)), store).check_version(
        registry, "churn-clean", scenarios["clean"].version, trigger=Trigger("cli", "check"))
    finding = next(f for f in report["findings"] if f["rule_id"] == "EVD-003")
    assert finding["evidence"]["max"] == 0.5


def test_job_001_fires_on_a_failed_job_and_not_on_a_completed_run(scenarios, engine, registry):
    failed = engine.job_failed(registry, JobRun(platform="databricks", run_id="41847992357944", job_name="train-churn", job_id="281874479417551"),
                               trigger=Trigger("databricks-jobs", "jobs.on_failure"))
    assert rule_ids(failed) == {"JOB-001"}
    assert failed["verdict"] == "warn"
    completed = engine.check_run(registry, scenarios["clean"].run_id, trigger=Trigger("databricks-jobs", "jobs.on_success"))
    assert "JOB-001" not in rule_ids(completed)
    assert completed["verdict"] == "pass"


def test_run_check_applies_only_run_level_rules(scenarios, engine, registry):
    report = engine.check_run(registry, scenarios["no_owner"].run_id, trigger=Trigger("azureml", "RunCompleted"))
    assert report["subject"]["kind"] == "run"
    cred = engine.check_run(registry, scenarios["cred_file"].run_id, trigger=Trigger("azureml", "RunCompleted"))
    assert rule_ids(cred) == {"SEC-002"}
    assert "EVD-007" not in rule_ids(report)


def test_dep_001_without_and_with_a_passing_report(scenarios, engine, registry, check, store):
    trained = scenarios["clean"]
    trigger = Trigger("azureml", "ModelDeployed")
    assert rule_ids(engine.deployed(registry, trained.model, trained.version, "churn-svc", trigger=trigger)) == {"DEP-001"}
    store.save(check(trained))
    assert rule_ids(engine.deployed(registry, trained.model, trained.version, "churn-svc", trigger=trigger)) == set()


def test_every_catalog_rule_has_a_positive_and_negative_test():
    covered = set(CASES) | {"EVD-001", "EVD-002", "EVD-003", "GOV-006", "JOB-001", "DEP-001"}
    assert covered == set(catalog())
