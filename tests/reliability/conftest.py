"""The function app under faults, duplicates and load, against the session's real MLflow server
(tests/conftest.py) through the session's counting/fault-injecting proxy.

``app`` configures the settings the way Azure would (env), builds the app's services with every
source checked against the proxy, records what would go to Service Bus (a real ServiceBusPublisher
whose sender keeps the messages), and calls the function objects of ``function_app.build_app``."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import azure.functions as func
import pytest

from shared.sources import signatures
from tests.functions.conftest import app_functions, call, local_services
from tests.support.kit import Trained
from tests.support.servicebus import FakeSender, capturing_publisher

MLFLOW_SECRET = "reliability-mlflow-secret"
DATABRICKS_SECRET = "reliability-databricks-secret"
WORKSPACE = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ml/providers/"
             "Microsoft.MachineLearningServices/workspaces/ws-reliability")


class App:
    def __init__(self, registry: str, proxy, store_path: str):
        self.registry, self.proxy, self.store_path = registry, proxy, store_path
        self.servicebus = FakeSender()  # keeps the Service Bus messages
        self.services = dataclasses.replace(local_services(registry, store_path),
                                            publisher=capturing_publisher(self.servicebus))
        self.functions = app_functions(lambda: self.services)

    @property
    def store(self):
        return self.services.store

    def reports(self, **filters) -> list[dict]:
        return self.store.query(**filters)

    @property
    def sent(self) -> list:
        return list(self.servicebus.sent)

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.sent]

    def call(self, name: str, value):
        return call(self.functions, name, value)

    def post(self, name: str, body: bytes, headers: dict) -> func.HttpResponse:
        route = json.loads(self.functions[name].get_function_json())["bindings"][0]["route"]
        req = func.HttpRequest("POST", f"http://localhost/api/{route}", headers=headers, params={}, route_params={},
                               body=body)
        return self.call(name, req)

    # -- deliveries of each source ---------------------------------------------------------------
    def mlflow_created(self, model: str, version: str, delivery_id: str | None = None) -> func.HttpResponse:
        body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00Z",
                           "data": {"name": model, "version": version, "run_id": None}}).encode()
        return self.post("mlflow_webhook", body, mlflow_headers(body, delivery_id))

    def databricks_created(self, model: str, version: str, timestamp: int | None = None) -> func.HttpResponse:
        body = json.dumps({"event": "MODEL_VERSION_CREATED", "webhook_id": "wh-1", "model_name": model,
                           "version": version, "event_timestamp": timestamp or int(time.time() * 1000),
                           "text": "registered"}).encode()
        headers = {"Content-Type": "application/json",
                   "X-Databricks-Signature": signatures.databricks_signature(DATABRICKS_SECRET, body)}
        return self.post("databricks_registry_webhook", body, headers)

    def eventgrid_registered(self, model: str, version: str, event_id: str | None = None):
        event = func.EventGridEvent(
            id=event_id or str(uuid.uuid4()), data={"modelName": model, "modelVersion": version},
            topic=WORKSPACE, subject=f"models/{model}:{version}",
            event_type="Microsoft.MachineLearningServices.ModelRegistered", event_time=datetime.now(UTC),
            data_version="2")
        return self.call("azureml_events", event)


def mlflow_headers(body: bytes, delivery_id: str | None = None, secret: str = MLFLOW_SECRET) -> dict:
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()))
    return {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": ts,
            "X-MLflow-Signature": signatures.mlflow_signature(secret, delivery_id, ts, body)}


def answer(resp: func.HttpResponse) -> tuple[int, dict]:
    return resp.status_code, json.loads(resp.get_body())


@pytest.fixture()
def app(proxy, tmp_path, monkeypatch):
    proxy.reset()
    for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL", "EVIDENCE_GATE_POLICY",
                 "EVIDENCE_GATE_WAIVERS", "EVIDENCE_GATE_REGISTRIES", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                 "EVIDENCE_GATE_AZUREML_REGION", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    store_path = str(tmp_path / "reports.sqlite")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.uri)
    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET", MLFLOW_SECRET)
    monkeypatch.setenv("DATABRICKS_WEBHOOK_SECRET", DATABRICKS_SECRET)
    monkeypatch.setenv("EVIDENCE_GATE_STORE", store_path)
    yield App(proxy.uri, proxy, store_path)
    proxy.reset()


@pytest.fixture()
def fast_fail(monkeypatch):
    """No client-side retries: a fault fails the request at once (the sender retries instead)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture(scope="session")
def cheap_versions(kit):
    """make(name, n): n more fully evidenced MLflow 3 versions of ``name`` registered from one
    logged sklearn model (one real log_model per session; each version is one registry call)."""
    base = kit.model_version(f"rel-base-{uuid.uuid4().hex[:6]}")
    lock = threading.Lock()

    def make(name: str, n: int) -> list[Trained]:
        kit.ensure_model(name)
        out = []
        with lock:
            for _ in range(n):
                mv = kit.client.create_model_version(name, source=f"models:/{base.model_id}", run_id=base.run_id,
                                                     tags={"owner": "team-churn"}, await_creation_for=0)
                out.append(Trained(name, str(mv.version), base.run_id, base.model_id))
        return out

    return make
