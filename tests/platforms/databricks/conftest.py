"""The local Databricks workspace (workspace.py) in front of the session's MLflow server, and the
environment that points the `databricks` / `databricks-uc` registries at it."""

from __future__ import annotations

import pytest

from tests.platforms.databricks.workspace import LocalDatabricks

DATABRICKS_ENV = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                  "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_AUTH_TYPE")


@pytest.fixture(scope="session")
def local_databricks(mlflow_server):
    workspace = LocalDatabricks(mlflow_server.uri).start()
    yield workspace
    workspace.stop()


def point_at(monkeypatch, tmp_path, host: str, **env: str) -> None:
    """Only these Databricks settings (no ~/.databrickscfg): ``DATABRICKS_HOST`` plus ``env``."""
    for key in DATABRICKS_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_HOST", host)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture()
def workspace(local_databricks, monkeypatch, tmp_path):
    """The local workspace, reached with its personal access token; faults cleared."""
    local_databricks.reset()
    point_at(monkeypatch, tmp_path, local_databricks.host, DATABRICKS_TOKEN=local_databricks.token)
    yield local_databricks
    local_databricks.reset()
