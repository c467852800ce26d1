"""A Unity Catalog version whose run lives in another workspace (`run_workspace_id`): with that
workspace named in `EVIDENCE_GATE_DATABRICKS_WORKSPACES`, the run, its logged model and their
artifacts are read there, and the check gives the verdict it gives when everything is in one
workspace. (Unset, the run is EVD-008: tests/platforms/databricks/test_faults.py.)"""

from __future__ import annotations

import pytest

from shared.engine import Engine
from shared.errors import ConfigurationError
from shared.evidence.registry import RegistryClient
from shared.policy import load_policy
from shared.report import Trigger
from tests.platforms.databricks.workspace import OTHER_WORKSPACE_ID, LocalDatabricks

SETTING = "EVIDENCE_GATE_DATABRICKS_WORKSPACES"


@pytest.fixture(scope="module")
def other_workspace(mlflow_server):
    """A second workspace in front of the same MLflow server, with the same token."""
    other = LocalDatabricks(mlflow_server.uri, workspace_id=OTHER_WORKSPACE_ID).start()
    yield other
    other.stop()


def _outcome(name: str, version: str, store) -> tuple[str, set[str]]:
    report = Engine(load_policy(), store).check_version("databricks-uc", name, version, trigger=Trigger("cli", "check"))
    return report["verdict"], {f["rule_id"] for f in report["findings"] if not f["waived"]}


def test_a_run_in_a_named_workspace_is_read_there(workspace, other_workspace, scenarios, store, monkeypatch):
    trained = scenarios["clean"]
    name = workspace.uc_name(trained.model)
    in_one_workspace = _outcome(name, trained.version, store)
    workspace.reset()
    other_workspace.reset()
    workspace.foreign_runs.add(trained.run_id)  # here: runs/get, its logged model and its files answer 404
    monkeypatch.setenv(SETTING, f"{OTHER_WORKSPACE_ID}={other_workspace.host}")
    assert _outcome(name, trained.version, store) == in_one_workspace
    assert workspace.count("/api/2.0/mlflow/runs/get") == 1  # 404 here, then read there
    assert other_workspace.count("/api/2.0/mlflow/runs/get") == 1
    assert other_workspace.count(f"/api/2.0/mlflow/logged-models/{trained.model_id}") >= 1
    assert other_workspace.count("/api/2.0/fs/") >= 2 and workspace.count("/api/2.0/fs/") == 0


def test_a_workspace_not_named_keeps_the_run_unreadable(workspace, other_workspace, scenarios, store, monkeypatch):
    trained = scenarios["clean"]
    other_workspace.reset()
    workspace.foreign_runs.add(trained.run_id)
    monkeypatch.setenv(SETTING, f"1111111111111111={other_workspace.host}")
    verdict, ids = _outcome(workspace.uc_name(trained.model), trained.version, store)
    assert "EVD-008" in ids and not ids & {"LIN-001", "LIN-003"}
    assert other_workspace.count("/api/") == 0


@pytest.mark.parametrize("value", ["6543210987654321", "abc=https://x", f"{OTHER_WORKSPACE_ID}=ftp://host/x"])
def test_a_malformed_setting_says_what_to_fix(workspace, scenarios, monkeypatch, value):
    trained = scenarios["clean"]
    workspace.foreign_runs.add(trained.run_id)
    monkeypatch.setenv(SETTING, value)
    client = RegistryClient("databricks-uc")
    client.get_model_version(workspace.uc_name(trained.model), trained.version)
    with pytest.raises(ConfigurationError, match=SETTING):
        client.get_run(trained.run_id)
