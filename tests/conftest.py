"""Shared fixtures: a real MLflow tracking server (SQL backend) behind a counting proxy."""

from __future__ import annotations

import os

import pytest

from demo.stack import MlflowServer
from tests.support.kit import RegistryKit
from tests.support.proxy import CountingProxy
from tests.support.reports import sample_report
from tests.support.scenarios import build as scenarios_on

# Keep failures fast in tests: the registry client's retry budget is tested explicitly.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(str(tmp_path_factory.mktemp("mlflow"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy(mlflow_server):
    proxy = CountingProxy(mlflow_server.uri).start()
    yield proxy
    proxy.stop()


@pytest.fixture()
def registry(proxy):
    """The registry URI the code under test uses: the proxy in front of the real server."""
    proxy.reset()
    return proxy.uri


@pytest.fixture(scope="session")
def kit(mlflow_server):
    return RegistryKit(mlflow_server.uri)


@pytest.fixture(scope="session")
def scenarios(kit, mlflow_server):
    """The engine scenarios (tests/support/scenarios.py) on the session's MLflow server."""
    return scenarios_on(kit, mlflow_server)


@pytest.fixture()
def store(tmp_path):
    from shared.sinks.store import ReportStore

    return ReportStore(str(tmp_path / "reports.sqlite"))


@pytest.fixture()
def report() -> dict:
    """The repository's sample failing report (tests/fixtures/report-fail.json), a fresh copy."""
    return sample_report()
