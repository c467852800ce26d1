"""The engine's scenarios give the same verdicts and findings through `databricks` (workspace
registry) and `databricks-uc` (Unity Catalog) on the local Databricks as on the open-source MLflow
server underneath, except for the documented platform differences, each tested here:

- Unity Catalog has an owner *field*: it satisfies an `owner` requirement (no EVD-007);
- the workspace registry has no aliases: its promotions are stage transitions (tested by stage);
- a run Databricks launched as a job is never interactive (LIN-006) and its code version can come
  from the job run's `git_source` (LIN-004), when MLflow's tags say neither.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from databricks.sdk.service import jobs

from shared.engine import Engine
from shared.errors import EvidenceGateError
from shared.policy import load_policy
from shared.report import Trigger
from shared.sinks.store import ReportStore

REGISTRATIONS = ["clean", "no_run", "failed_run", "deleted_run", "missing_run", "cred_param", "cred_file",
                 "no_signature", "no_env", "no_git", "no_dataset", "no_owner", "notebook", "metrics", "no_run_id",
                 "artifact_path", "runs_uri", "failed_registration", "pending", "stale"]
ALIAS_PROMOTIONS = ["champion", "approved", "unapproved", "self_approved", "regressed", "first_promo"]
# (platform, scenario) -> the outcome there instead of open-source MLflow's
DIFFERENCES = {("databricks-uc", "no_owner"): ("pass", set())}  # the UC owner field is the owner


def outcome(registry: str, model: str, version: str, tmp_path, **target) -> tuple:
    engine = Engine(load_policy(), ReportStore(str(tmp_path / f"{registry.replace(':', '_').replace('/', '_')}.sqlite")))
    try:
        report = engine.check_version(registry, model, version, trigger=Trigger("cli", "check"), **target)
    except EvidenceGateError as exc:
        return type(exc).__name__, exc.exit_code
    return report["verdict"], {f["rule_id"] for f in report["findings"] if not f["waived"]}


@pytest.mark.parametrize("platform", ["databricks", "databricks-uc"])
@pytest.mark.parametrize("scenario", REGISTRATIONS)
def test_registrations_match_open_source(scenario, platform, scenarios, registry, workspace, tmp_path):
    trained = scenarios[scenario]
    name = workspace.uc_name(trained.model) if platform == "databricks-uc" else trained.model
    oss = outcome(registry, trained.model, trained.version, tmp_path)
    assert outcome(platform, name, trained.version, tmp_path) == DIFFERENCES.get((platform, scenario), oss)


@pytest.mark.parametrize("scenario", ALIAS_PROMOTIONS)
def test_unity_catalog_alias_promotions_match_open_source(scenario, scenarios, registry, workspace, tmp_path):
    trained = scenarios[scenario]
    oss = outcome(registry, trained.model, trained.version, tmp_path, alias="champion")
    uc = outcome("databricks-uc", workspace.uc_name(trained.model), trained.version, tmp_path, alias="champion")
    assert uc == oss


def test_the_unity_catalog_owner_field_satisfies_the_owner_requirement(scenarios, workspace, tmp_path):
    trained = scenarios["no_owner"]
    assert outcome("databricks", trained.model, trained.version, tmp_path) == ("warn", {"EVD-007"})
    assert outcome("databricks-uc", workspace.uc_name(trained.model), trained.version, tmp_path) == ("pass", set())


@pytest.fixture(scope="module")
def stage_model(kit):
    """A champion in Production and candidates, for the workspace registry's stage promotions."""
    name = "dbx-stage-promo"
    champion = kit.model_version(name, metrics={"accuracy": 0.91, "auc": 0.93})
    kit.client.transition_model_version_stage(name, champion.version, "Production")
    approved = {"owner": "team-churn", "approved_by": "rita"}
    return {
        "approved": kit.model_version(name, version_tags=approved, metrics={"accuracy": 0.92, "auc": 0.94}),
        "unapproved": kit.model_version(name, metrics={"accuracy": 0.92, "auc": 0.94}),
        "self_approved": kit.model_version(name, version_tags={"owner": "team-churn", "approved_by": "Carol"},
                                           metrics={"accuracy": 0.92, "auc": 0.94}),
        "regressed": kit.model_version(name, version_tags=approved, metrics={"accuracy": 0.80, "auc": 0.93}),
    }


@pytest.mark.parametrize("scenario", ["approved", "unapproved", "self_approved", "regressed"])
def test_workspace_registry_stage_promotions_match_open_source(scenario, stage_model, registry, workspace, tmp_path):
    trained = stage_model[scenario]
    oss = outcome(registry, trained.model, trained.version, tmp_path, stage="Production")
    assert oss[0] == "fail"
    assert outcome("databricks", trained.model, trained.version, tmp_path, stage="Production") == oss


def test_the_workspace_registry_has_no_aliases_so_an_alias_promotion_has_no_previous_holder(scenarios, registry,
                                                                                           workspace, tmp_path):
    trained = scenarios["regressed"]
    oss = outcome(registry, trained.model, trained.version, tmp_path, alias="champion")
    workspace_registry = outcome("databricks", trained.model, trained.version, tmp_path, alias="champion")
    assert "GOV-003" in oss[1] and "GOV-004" not in oss[1]
    assert workspace_registry[1] == (oss[1] - {"GOV-003"}) | {"GOV-004"}


@pytest.fixture(scope="module")
def job_trained(kit):
    """A version trained by a Databricks wheel task: job tags, no Git tag, the commit in git_source."""
    tags = {"mlflow.databricks.jobID": "55", "mlflow.databricks.jobRunID": "7001"}
    return kit.model_version("dbx-wheel-job", git_commit=None, source_type="LOCAL", tags=tags)


JOB_RUN = jobs.Run(
    job_id=55, run_id=7001, run_name="train-churn",
    git_source=jobs.GitSource(git_url="https://github.com/contoso/churn", git_provider=jobs.GitProvider.GIT_HUB,
                              git_branch="main", git_snapshot=jobs.GitSnapshot(used_commit="9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39f2a1")),
    tasks=[jobs.RunTask(task_key="train", run_id=7002)])


def test_a_job_run_is_not_interactive_and_its_git_source_is_the_code_version(job_trained, registry, workspace,
                                                                              tmp_path):
    workspace.job_runs[JOB_RUN.run_id] = JOB_RUN
    assert outcome(registry, job_trained.model, job_trained.version, tmp_path) == ("warn", {"LIN-004", "LIN-006"})
    assert outcome("databricks", job_trained.model, job_trained.version, tmp_path) == ("pass", set())
    assert workspace.count("/jobs/runs/get") == 1


def test_a_databricks_check_never_imports_mlflow(scenarios, workspace, tmp_path):
    """The cold-start path: a fresh process checks a Unity Catalog version on databricks-sdk alone."""
    code = (
        "import json, sys\n"
        "from shared.engine import Engine\nfrom shared.policy import load_policy\nfrom shared.report import Trigger\n"
        "from shared.sinks.store import ReportStore\n"
        f"report = Engine(load_policy(), ReportStore({str(tmp_path / 'r.sqlite')!r})).check_version(\n"
        f"    'databricks-uc', {workspace.uc_name('churn-clean')!r}, {scenarios['clean'].version!r},"
        " trigger=Trigger('cli', 'check'))\n"
        "print(json.dumps({'verdict': report['verdict'], 'requests': report['registry_requests'],"
        " 'mlflow': sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"verdict": "pass", "requests": 6, "mlflow": []}
