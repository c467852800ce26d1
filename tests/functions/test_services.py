"""The app's one wiring (shared.services): what Services.from_settings builds from the settings (the
SQLite or the Table state store, a publisher only with Service Bus settings, each source's registry),
the refusal in an Azure Functions host without a shared store, the process-wide Once, and which
registry each event is checked against."""

from __future__ import annotations

import os
import secrets
import threading

import pytest

from shared.engine import Engine
from shared.errors import ConfigurationError
from shared.evidence import mlflow_client
from shared.evidence.registry import RegistryClient
from shared.policy import load_policy
from shared.services import Once, Services
from shared.sinks.servicebus import ServiceBusPublisher
from shared.sinks.store import ReportStore
from shared.sources import RegistryEvent, azureml, databricks_jobs, databricks_registry, mlflow
from shared.sources.azureml import WorkspaceTrackingUris
from shared.state.table import TableStateStore

WS = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ml/providers/"
      "Microsoft.MachineLearningServices/workspaces/ws-ml")
AZURE_HOST = ("WEBSITE_INSTANCE_ID", "FUNCTIONS_WORKER_RUNTIME", "WEBSITE_SITE_NAME", "CONTAINER_NAME")


@pytest.fixture()
def plain_settings(monkeypatch, tmp_path):
    """Settings of a developer machine: nothing but a store path and a tracking URI."""
    for name in ("EVIDENCE_GATE_STATE", "EVIDENCE_GATE_STATE__tableServiceUri", "EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace",
                 "EVIDENCE_GATE_SERVICEBUS__clientId", "EVIDENCE_GATE_TOPIC", "EVIDENCE_GATE_POLICY", "EVIDENCE_GATE_WAIVERS",
                 "EVIDENCE_GATE_AZUREML_REGION", "APPLICATIONINSIGHTS_CONNECTION_STRING", *AZURE_HOST):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVIDENCE_GATE_STORE", str(tmp_path / "local" / "reports.sqlite"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    return tmp_path / "local" / "reports.sqlite"


def test_from_settings_on_a_developer_machine_is_sqlite_without_service_bus(plain_settings, monkeypatch):
    monkeypatch.setenv("EVIDENCE_GATE_AZUREML_REGION", "westeurope")
    services = Services.from_settings()
    assert isinstance(services.store, ReportStore) and services.store.path == str(plain_settings)
    assert services.publisher is None  # reports go to the store only
    assert services.mlflow_registry == "http://127.0.0.1:5000"
    assert (services.databricks_registry, services.databricks_jobs_registry) == ("databricks", "databricks")
    assert isinstance(services.azureml_tracking_uri, WorkspaceTrackingUris)
    assert services.azureml_tracking_uri.region == "westeurope"
    assert services.engine.policy.name == load_policy().name  # the built-in policy when none is set
    assert services.client_factory is RegistryClient and services.clock is services.engine.clock


def test_from_settings_with_the_state_connection_is_the_table_store(plain_settings, azurite, monkeypatch):
    monkeypatch.setenv("EVIDENCE_GATE_STATE", azurite.connection_string)
    monkeypatch.setenv("EVIDENCE_GATE_STATE_TABLE", f"svc{secrets.token_hex(6)}")
    services = Services.from_settings()
    assert isinstance(services.store, TableStateStore)
    assert services.store.watermark("http://127.0.0.1:5000") is None  # the table answers
    assert not plain_settings.exists()  # no local file next to the shared store


def test_from_settings_with_a_service_bus_namespace_has_a_publisher(plain_settings, monkeypatch):
    monkeypatch.setenv("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "sb://gate-ns.servicebus.windows.net/")
    monkeypatch.setenv("EVIDENCE_GATE_TOPIC", "findings")
    publisher = Services.from_settings().publisher
    assert isinstance(publisher, ServiceBusPublisher)
    assert (publisher.namespace, publisher.topic) == ("gate-ns.servicebus.windows.net", "findings")


def test_in_azure_without_a_shared_store_the_services_refuse_until_it_is_set(plain_settings, azurite, monkeypatch):
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123456789abcdef")
    built = []

    def build() -> Services:
        built.append(1)
        return Services.from_settings()

    services = Once(build)
    for _ in range(2):  # a failed build is not kept: every event is refused, each tries again
        with pytest.raises(ConfigurationError, match="EVIDENCE_GATE_STATE__tableServiceUri") as refused:
            services()
        assert refused.value.http_status == 503 and refused.value.code == "not_configured"
    assert not plain_settings.parent.exists()  # no private local file was created
    monkeypatch.setenv("EVIDENCE_GATE_STATE", azurite.connection_string)
    monkeypatch.setenv("EVIDENCE_GATE_STATE_TABLE", f"svc{secrets.token_hex(6)}")
    assert isinstance(services().store, TableStateStore)
    assert services() is services() and len(built) == 3  # then kept


def test_once_builds_one_services_for_concurrent_first_events():
    built = []
    gate = threading.Barrier(8)

    def build() -> Services:
        built.append(1)
        return Services(engine=Engine(load_policy(), None))

    services = Once(build)
    seen = []

    def first_event():
        gate.wait()
        seen.append(services())

    threads = [threading.Thread(target=first_event) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(s) for s in seen}) == 1


def event(source: str, **fields) -> RegistryEvent:
    return RegistryEvent(source=source, event_type="t", action="registration", model="m", version="1", **fields)


def test_the_wiring_names_each_sources_registry_not_the_parser():
    services = Services(engine=Engine(load_policy(), None), mlflow_registry="http://mlflow:5000",
                        databricks_registry="databricks://registry", databricks_jobs_registry="databricks://jobs",
                        azureml_tracking_uri=lambda workspace: f"azureml://resolved{workspace}")
    assert services.registry_for(event(mlflow.SOURCE)) == "http://mlflow:5000"
    assert services.registry_for(event(databricks_registry.SOURCE)) == "databricks://registry"
    assert services.registry_for(event(databricks_jobs.SOURCE)) == "databricks://jobs"
    assert services.registry_for(event(azureml.SOURCE, workspace=WS)) == f"azureml://resolved{WS}"
    assert services.registry_for(event("reconcile", registry="http://named:1")) == "http://named:1"  # its own wins
    with pytest.raises(ConfigurationError, match="set MLFLOW_TRACKING_URI"):
        Services(engine=services.engine).registry_for(event(mlflow.SOURCE))


def test_the_workspace_resolver_keeps_what_the_workspace_said_and_falls_back_to_the_region():
    asked = []

    def ask(workspace: str) -> str:
        asked.append(workspace)
        return "azureml://westeurope.api.azureml.ms/mlflow/v1.0" + workspace

    resolver = WorkspaceTrackingUris(ask=ask)
    assert resolver(WS) == resolver(WS) == "azureml://westeurope.api.azureml.ms/mlflow/v1.0" + WS
    assert asked == [WS]  # asked once, then kept

    def refused(workspace: str) -> str:
        asked.append(workspace)
        raise ConfigurationError("no Azure credential configured")

    fallback = WorkspaceTrackingUris(" North Europe", ask=refused)
    assert fallback(WS) == fallback(WS) == "azureml://northeurope.api.azureml.ms/mlflow/v1.0" + WS
    assert asked == [WS, WS, WS]  # a derived URI is not kept: the workspace is asked again next time
    with pytest.raises(ConfigurationError):
        WorkspaceTrackingUris(ask=refused)(WS)


def test_a_registry_client_leaves_the_environment_alone(monkeypatch):
    for name in mlflow_client.HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    client = RegistryClient("http://127.0.0.1:9")
    assert client.backend == "rest" and dict(os.environ) == before
    assert mlflow_client.http_setting("MLFLOW_HTTP_REQUEST_TIMEOUT") == "15"  # Evidence Gate's default, not MLflow's 120
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "4")
    assert mlflow_client.http_setting("MLFLOW_HTTP_REQUEST_TIMEOUT") == "4"
