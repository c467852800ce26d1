"""Fixtures for the function app: its own real MLflow server (webhook list cache of 1 s, so a
webhook created in a test is used at once), the counting/fault proxy in front of it, settings
pointing every source at it, and helpers to call the registered function objects."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import azure.functions as func
import mlflow
import pytest

from demo.stack import MlflowServer
from shared.services import Services
from shared.sources import signatures
from tests.support.kit import RegistryKit
from tests.support.proxy import CountingProxy
from tests.support.servicebus import FakeSender, capturing_publisher

PAYLOADS = Path(__file__).parent / "payloads"
MLFLOW_SECRET = "test-mlflow-webhook-secret"
DATABRICKS_SECRET = "test-databricks-webhook-secret"
JOBS_USER, JOBS_PASSWORD = "evidence-gate", "test-jobs-password"


def payload(name: str):
    return json.loads((PAYLOADS / name).read_text())


class FunctionsKit(RegistryKit):
    """RegistryKit for this package's server; sets MLflow's global URIs around each build (the
    session's other kit uses the same globals)."""

    def model_version(self, *args, **kwargs):
        before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        try:
            return super().model_version(*args, **kwargs)
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])


@pytest.fixture(scope="session")
def fn_server(tmp_path_factory):
    saved = os.environ.get("MLFLOW_WEBHOOK_CACHE_TTL")
    os.environ["MLFLOW_WEBHOOK_CACHE_TTL"] = "1"
    try:
        server = MlflowServer(str(tmp_path_factory.mktemp("mlflow-functions"))).start()
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_WEBHOOK_CACHE_TTL", None)
        else:
            os.environ["MLFLOW_WEBHOOK_CACHE_TTL"] = saved
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fn_proxy(fn_server):
    proxy = CountingProxy(fn_server.uri).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def fn_kit(fn_server):
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    kit = FunctionsKit(fn_server.uri)
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])
    return kit


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def app_functions(services: Callable[[], Services]) -> dict[str, func.Function]:
    """The function objects of ``function_app.build_app(services)``, by name."""
    import function_app

    return {f.get_function_name(): f for f in function_app.build_app(services).get_functions()}


def call(functions: dict[str, func.Function], name: str, value):
    fn = functions[name]
    (trigger,) = [b for b in json.loads(fn.get_function_json())["bindings"] if b["direction"] == "IN"]
    return fn.get_user_function()(**{trigger["name"]: value})


def post(functions: dict[str, func.Function], name: str, body, headers: dict | None = None) -> func.HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    route = json.loads(functions[name].get_function_json())["bindings"][0]["route"]
    req = func.HttpRequest("POST", f"http://localhost/api/{route}", headers=headers or {}, params={},
                           route_params={}, body=raw)
    return call(functions, name, req)


def local_services(registry: str, store_path: str) -> Services:
    """Services on a SQLite store whose every source checks against ``registry``."""
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.sinks.store import ReportStore

    return Services(engine=Engine(load_policy(), ReportStore(store_path)), mlflow_registry=registry,
                    databricks_registry=registry, databricks_jobs_registry=registry,
                    azureml_tracking_uri=lambda _workspace: registry)


class Gate:
    """The app under test: function_app's functions built around ``services``, and its store."""

    def __init__(self, registry: str, store_path: str, proxy: CountingProxy | None, services: Services):
        self.registry = registry
        self.store_path = store_path
        self.proxy = proxy
        self.services = services
        self.functions = app_functions(lambda: self.services)

    @property
    def store(self):
        return self.services.store

    def use(self, **changes) -> None:
        """The app's services from now on, with these changes (``engine=...``, ``publisher=...``)."""
        self.services = dataclasses.replace(self.services, **changes)

    def capture_servicebus(self) -> FakeSender:
        """Publish to Service Bus through a sender that keeps the messages."""
        sender = FakeSender()
        self.use(publisher=capturing_publisher(sender))
        return sender

    def reports(self, **filters) -> list[dict]:
        return self.store.query(**filters)

    def call(self, name: str, value):
        return call(self.functions, name, value)

    def post(self, name: str, body, headers: dict | None = None) -> func.HttpResponse:
        return post(self.functions, name, body, headers)


def mlflow_headers(body: bytes, *, secret: str = MLFLOW_SECRET, delivery_id: str | None = None,
                   timestamp: int | None = None) -> dict:
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": ts,
            "X-MLflow-Signature": signatures.mlflow_signature(secret, delivery_id, ts, body)}


def databricks_headers(body: bytes, secret: str = DATABRICKS_SECRET) -> dict:
    return {"Content-Type": "application/json", "X-Databricks-Signature": signatures.databricks_signature(secret, body)}


def basic(user: str = JOBS_USER, password: str = JOBS_PASSWORD) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture()
def gate(fn_proxy, tmp_path, monkeypatch):
    fn_proxy.reset()
    registry = fn_proxy.uri
    store_path = str(tmp_path / "reports.sqlite")
    for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL", "EVIDENCE_GATE_POLICY",
                 "EVIDENCE_GATE_WAIVERS", "EVIDENCE_GATE_REGISTRIES", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                 "EVIDENCE_GATE_AZUREML_REGION", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
                 "EVIDENCE_GATE_STATE", "EVIDENCE_GATE_STATE__tableServiceUri"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET", MLFLOW_SECRET)
    monkeypatch.setenv("DATABRICKS_WEBHOOK_SECRET", DATABRICKS_SECRET)
    monkeypatch.setenv("DATABRICKS_JOBS_WEBHOOK_USERNAME", JOBS_USER)
    monkeypatch.setenv("DATABRICKS_JOBS_WEBHOOK_PASSWORD", JOBS_PASSWORD)
    monkeypatch.setenv("EVIDENCE_GATE_STORE", store_path)
    # Databricks and Azure ML payloads reach the local MLflow server too.
    yield Gate(registry, store_path, fn_proxy, local_services(registry, store_path))
    fn_proxy.reset()
