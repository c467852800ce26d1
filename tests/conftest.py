"""Shared fixtures: a real MLflow tracking server (SQL backend) behind a counting proxy, and Azurite
(the Azure Storage emulator: Table, Blob, Queue) for the state store and storage tests."""

from __future__ import annotations

import os

import pytest

from demo.stack import MlflowServer
from tests.support import azurite as azurite_support
from tests.support.kit import RegistryKit
from tests.support.proxy import CountingProxy
from tests.support.reports import sample_report
from tests.support.scenarios import build as scenarios_on

# Keep failures fast in tests: the registry client's retry budget is tested explicitly.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# No MLflow usage telemetry from the tests' own MLflow clients and the servers they start.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


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


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite's Blob, Queue and Table services on free loopback ports, for the whole session.
    ``azurite.connection_string`` is the development account's connection string."""
    missing = azurite_support.available()
    if missing:
        pytest.fail(f"Azurite cannot start: {missing}")
    emulator = azurite_support.Azurite(str(tmp_path_factory.mktemp("azurite"))).start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def table_outage(azurite):
    """Stops Azurite's Table service (``table_outage.stop()``) and starts it again
    (``table_outage.start()``, also at the end of the test) on the same port with its data."""

    class Outage:
        def stop(self) -> None:
            azurite.stop_service("table")

        def start(self) -> None:
            if not azurite.running("table"):
                azurite.start_service("table")

    outage = Outage()
    yield outage
    outage.start()
