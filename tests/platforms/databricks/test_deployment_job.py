"""MLflow 3 deployment jobs (Unity Catalog): a version's `deployment_job_state` is evidence in the
report, and `evidence-gate check` as the job's first task (the task of
docs/sources/databricks-unity-catalog.md, run with the job's parameters) blocks the deployment
with a failing verdict."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from mlflow.protos import databricks_uc_registry_messages_pb2 as uc_proto

from shared.cli import main as cli
from shared.engine import Engine
from shared.policy import load_policy
from shared.render import table
from shared.report import Trigger, validate

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources" / "databricks-unity-catalog.md"


def _state(run_state: str, task: str) -> uc_proto.ModelVersionDeploymentJobState:
    return uc_proto.ModelVersionDeploymentJobState(
        job_id="812", run_id="4410", job_state=uc_proto.DeploymentJobConnection.CONNECTED,
        run_state=uc_proto.ModelVersionDeploymentJobState.DeploymentJobRunState.Value(run_state), current_task_name=task)


def _check(registry: str, model: str, version: str, store) -> dict:
    report = Engine(load_policy(), store).check_version(registry, model, version, trigger=Trigger("cli", "check"))
    validate(report)
    return report


def test_the_deployment_job_state_is_in_the_report(workspace, scenarios, store):
    trained = scenarios["clean"]
    name = workspace.uc_name(trained.model)
    without = _check("databricks-uc", name, trained.version, store)
    workspace.deployment_jobs[(name, trained.version)] = _state("APPROVAL", "Approval_Check")
    report = _check("databricks-uc", name, trained.version, store)
    assert report["deployment_job"] == {"job_id": "812", "run_id": "4410", "job_state": "CONNECTED",
                                        "run_state": "APPROVAL", "current_task": "Approval_Check"}
    assert "deployment job 812, run 4410: APPROVAL at task Approval_Check (job CONNECTED)" in table(report)
    # evidence, not a rule: the same verdict and findings as without it
    assert (report["verdict"], report["findings"]) == (without["verdict"], without["findings"])

    workspace.deployment_jobs[(name, trained.version)] = _state("RUNNING", "evidence_gate")
    again = _check("databricks-uc", name, trained.version, store)
    assert again["deployment_job"]["run_state"] == "RUNNING"
    assert again["evidence_digest"] != report["evidence_digest"]


def test_no_deployment_job_no_section(workspace, scenarios, store):
    trained = scenarios["clean"]
    assert "deployment_job" not in _check("databricks-uc", workspace.uc_name(trained.model), trained.version, store)
    assert "deployment_job" not in _check("databricks", trained.model, trained.version, store)
    unset = uc_proto.ModelVersionDeploymentJobState(
        job_state=uc_proto.DeploymentJobConnection.NOT_SET_UP)  # the model has no deployment job
    workspace.deployment_jobs[(workspace.uc_name(trained.model), trained.version)] = unset
    assert "deployment_job" not in _check("databricks-uc", workspace.uc_name(trained.model), trained.version, store)


def _gate_task_parameters() -> list[str]:
    """The evidence_gate task's parameters in the documented Asset Bundle."""
    section = DOC.read_text(encoding="utf-8").split("## Deployment jobs", 1)[1]
    bundle = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    (job,) = bundle["resources"]["jobs"].values()
    tasks = {t["task_key"]: t for t in job["tasks"]}
    first = [key for key, t in tasks.items() if not t.get("depends_on")]
    assert first == ["evidence_gate"]
    assert all(t.get("depends_on") for key, t in tasks.items() if key != "evidence_gate")
    task = tasks["evidence_gate"]["python_wheel_task"]
    assert (task["package_name"], task["entry_point"]) == ("evidence-gate", "evidence-gate")
    return task["parameters"]


@pytest.mark.parametrize(("scenario", "exit_code"), [("clean", 0), ("no_run", 1), ("missing_run", 1)])
def test_the_documented_first_task_passes_or_blocks_the_deployment(workspace, scenarios, scenario, exit_code, capsys):
    trained = scenarios[scenario]
    job_parameters = {"model_name": workspace.uc_name(trained.model), "model_version": trained.version}
    argv = [re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: job_parameters[m.group(1)], p)
            for p in _gate_task_parameters()]
    assert cli(argv) == exit_code
    out = capsys.readouterr().out
    assert ("FAIL" in out) == (exit_code == 1)
