"""The intake inside one process, with the function objects of function_app: an Event Grid event
feeds the same Azurite queue as the webhooks, and the `intake` function (given the queue message
the way the host would) checks it and stores its report; a delivery the queue cannot take is a
503 with Retry-After; without the intake setting nothing changes (checked in the request)."""

from __future__ import annotations

import json
import secrets

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient

from demo.stack import free_port
from shared.errors import IntakeUnavailable
from shared.intake.message import decode
from shared.intake.queue import CLIENT_OPTIONS, IntakeQueue
from tests.functions.conftest import mlflow_headers, payload, unique
from tests.functions.test_azureml_events import WS
from tests.functions.test_azureml_events import decode as eventgrid


@pytest.fixture()
def intake(gate, azurite, monkeypatch):
    name = f"inproc-{secrets.token_hex(4)}"
    monkeypatch.setenv("EVIDENCE_GATE_INTAKE", azurite.connection_string)
    monkeypatch.setenv("EVIDENCE_GATE_INTAKE_QUEUE", name)
    gate.use(intake=IntakeQueue.from_settings())  # as Services.from_settings builds it
    return QueueClient.from_connection_string(azurite.connection_string, name,
                                              message_decode_policy=BinaryBase64DecodePolicy())


def received(queue: QueueClient) -> list:
    return list(queue.receive_messages(max_messages=32, visibility_timeout=30))


def as_host_message(message) -> func.QueueMessage:
    """What the Functions host hands the function: the base64-decoded body and the message's metadata."""
    return QueueMessage(id=message.id, body=message.content, dequeue_count=message.dequeue_count,
                        pop_receipt=message.pop_receipt)


def test_an_event_grid_event_feeds_the_queue_and_the_intake_function_reports_it(gate, intake, fn_kit):
    name = unique("inproc-aml")
    trained = fn_kit.model_version(name)
    event = payload("azureml-model-registered.eventgrid.json")[0]
    event["data"].update(modelName=name, modelVersion=trained.version)
    event["subject"], event["topic"] = f"models/{name}:{trained.version}", WS
    assert gate.call("azureml_events", eventgrid(event)) is None
    assert gate.reports() == []  # queued, not checked in the Event Grid delivery
    (message,) = received(intake)
    queued = decode(message.content)
    assert (queued.event.source, queued.event.model, queued.event.version, queued.event.workspace) == (
        "azureml", name, trained.version, WS)
    assert queued.attempt == 1
    assert gate.call("intake", as_host_message(message)) is None
    (report,) = gate.reports()
    assert report["trigger"]["event_id"] == event["id"] and report["verdict"] == "pass"


def test_a_webhook_the_queue_cannot_take_is_503_with_retry_after(gate):
    closed = free_port()
    connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                  f"AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;")
    gate.use(intake=IntakeQueue(*(QueueClient.from_connection_string(connection, name, **CLIENT_OPTIONS)
                                  for name in ("evidence-gate-intake", "evidence-gate-intake-poison"))))
    body = payload("mlflow-model-version-created.json")
    raw = json.dumps(body).encode()
    resp = gate.post("mlflow_webhook", raw, mlflow_headers(raw))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "30"
    answer = json.loads(resp.get_body())
    assert answer["error"] == IntakeUnavailable.code
    assert answer["message"] == "the intake queue is unavailable (connection failed (ServiceRequestError)); retry later"
    assert "a2V5" not in resp.get_body().decode()  # the account key is never echoed


def test_without_the_intake_setting_a_webhook_is_checked_in_the_request(gate, fn_kit, monkeypatch):
    trained = fn_kit.model_version(unique("inproc-sync"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", gate.registry)  # mlflow.set_tracking_uri (in the kit) rewrote it
    body = payload("mlflow-model-version-created.json")
    body["data"].update(name=trained.model, version=trained.version, run_id=None)
    raw = json.dumps(body).encode()
    resp = gate.post("mlflow_webhook", raw, mlflow_headers(raw))
    assert resp.status_code == 200 and json.loads(resp.get_body())["stored"] == 1
