"""The `notify_teams` function through the azure-functions library, posting to a real local server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import azure.functions as func
import pytest

import handlers.notify_teams as notify_module
from shared.errors import TeamsUnavailable

from .conftest import REPO
from .helpers import make_report


@pytest.fixture
def app() -> func.FunctionApp:
    app = func.FunctionApp()
    app.register_functions(notify_module.bp)
    return app


@pytest.fixture
def fn(app):
    (function,) = [f for f in app.get_functions() if f.get_function_name() == "notify_teams"]
    return function


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, caplog):
    monkeypatch.setattr(notify_module, "_notifier", None)
    monkeypatch.setattr(notify_module, "_notifier_key", None)
    monkeypatch.delenv("TEAMS_WEBHOOK_URL", raising=False)
    caplog.set_level(logging.DEBUG)


def message(report_or_body) -> func.ServiceBusMessage:
    body = report_or_body if isinstance(report_or_body, bytes) else json.dumps(report_or_body).encode()
    return func.ServiceBusMessage(body=body, content_type="application/json")


def test_binding_metadata(fn):
    meta = json.loads(fn.get_function_json())
    assert fn.get_function_name() == "notify_teams"
    assert meta["bindings"] == [
        {
            "direction": "IN",
            "type": "serviceBusTrigger",
            "name": "msg",
            "connection": "EVIDENCE_GATE_SERVICEBUS",
            "topicName": "%EVIDENCE_GATE_TOPIC%",
            "subscriptionName": "teams",
        }
    ]


def test_posts_the_card(fn, webhook, monkeypatch, sample_report):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    assert fn.get_user_function()(message(sample_report)) is None  # returns: message completed
    assert len(webhook.requests) == 1
    card = webhook.requests[0].json()["attachments"][0]["content"]
    assert card["body"][0]["items"][1]["text"] == "FAIL: credit-risk-scorer version 17"


def test_decorated_object_is_callable_too(webhook, monkeypatch, sample_report):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    notify_module.notify_teams(message(sample_report))
    assert len(webhook.requests) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_answers_raise_so_service_bus_redelivers(fn, webhook, monkeypatch, sample_report, status):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    webhook.answer(status)
    with pytest.raises(TeamsUnavailable):
        fn.get_user_function()(message(sample_report))
    # the redelivery is posted
    fn.get_user_function()(message(sample_report))
    assert [r.path for r in webhook.requests] == [webhook.requests[0].path] * 2


@pytest.mark.parametrize("status", [400, 404, 413])
def test_client_errors_complete_the_message(fn, webhook, monkeypatch, sample_report, status):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    webhook.answer(status)
    assert fn.get_user_function()(message(sample_report)) is None
    assert len(webhook.requests) == 1


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe\x00garbage", b"[]", b'"fail"', b'{"report_id": "x"}', b'{"verdict": 3}'],
    ids=["empty", "text", "binary", "array", "string", "no-verdict", "bad-verdict"],
)
def test_malformed_bodies_are_logged_and_completed(fn, webhook, monkeypatch, caplog, body):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    assert fn.get_user_function()(message(body)) is None
    assert webhook.requests == []
    assert "not a report" in caplog.text


def test_pass_report_is_completed_without_a_post(fn, webhook, monkeypatch):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    fn.get_user_function()(message(make_report(verdict="pass", findings=[])))
    assert webhook.requests == []


def test_unset_webhook_url_is_logged_and_completed(fn, caplog, sample_report):
    assert fn.get_user_function()(message(sample_report)) is None
    assert "TEAMS_WEBHOOK_URL is not set" in caplog.text


def test_a_duplicate_delivery_posts_once(fn, webhook, monkeypatch, sample_report):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    fn.get_user_function()(message(sample_report))
    fn.get_user_function()(message(sample_report))
    assert len(webhook.requests) == 1


def test_url_never_in_function_logs_or_errors(fn, webhook, monkeypatch, caplog, sample_report):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    errors = []
    fn.get_user_function()(message(sample_report))
    webhook.answer(500, body=webhook.url.encode())
    with pytest.raises(TeamsUnavailable) as info:
        fn.get_user_function()(message(make_report(report_id="1" * 64)))
    errors.append(repr(info.value))
    webhook.answer(400, body=webhook.url.encode())
    fn.get_user_function()(message(make_report(report_id="2" * 64)))
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "ftp://example.invalid/?sig=" + webhook.secret)
    fn.get_user_function()(message(make_report(report_id="3" * 64)))
    logged = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    assert "HTTP 500" in logged and "HTTP 400" in logged
    assert webhook.secret not in logged
    assert all(webhook.secret not in e for e in errors)


def test_module_import_is_cheap():
    code = (
        "import sys, handlers.notify_teams as m; "
        "heavy = ('shared.sinks.teams', 'urllib.request', 'requests', 'mlflow'); "
        "print(sorted(n for n in heavy if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
