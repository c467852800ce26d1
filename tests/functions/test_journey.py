"""Issue 4's acceptance: a failing report travels from a webhook through the Service Bus message
contract, the `teams` subscription and the notifier to a local Teams endpoint, and is rendered as
a card a release manager reads. Nothing secret appears on the way."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import azure.functions as func
import pytest

from demo.render import BUNDLE, chromium_path, render
from demo.stack import TeamsInbox
from tests.functions.conftest import mlflow_headers, unique

PASSWORD = "Sup3r-S3cret-Passw0rd!-journey"


def teams_subscription_accepts(properties: dict) -> bool:
    """The `teams` subscription's SQL filter, `verdict <> 'pass'` (infra/core/servicebus.bicep)."""
    return properties["verdict"] != "pass"


def test_failing_report_from_webhook_to_rendered_card(gate, fn_kit, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    sender = gate.capture_servicebus()
    name = unique("journey")
    trained = fn_kit.model_version(name, params={"learning_rate": "0.1", "db_password": PASSWORD})

    # 1. the MLflow webhook delivery (signed), handled by the registered function
    body = json.dumps({"entity": "model_version", "action": "created", "timestamp": datetime.now(UTC).isoformat(),
                       "data": {"name": name, "version": trained.version, "source": f"models:/{trained.model_id}",
                                "run_id": None, "tags": {}, "description": None}}).encode()
    headers = mlflow_headers(body, delivery_id="3a1f7a0e-5d1c-4f55-9a55-0c1d2e3f4a5b")
    response = gate.post("mlflow_webhook", body, headers)
    assert response.status_code == 200, response.get_body()

    # 2. the message contract, exactly as handed to the SDK sender
    (message,) = sender.sent
    report = json.loads(b"".join(message.body))
    assert report["verdict"] == "fail" and "SEC-001" in {f["rule_id"] for f in report["findings"]}
    assert message.message_id == report["report_id"]
    assert message.correlation_id == "3a1f7a0e-5d1c-4f55-9a55-0c1d2e3f4a5b"
    assert message.subject == "fail" and message.content_type == "application/json"
    properties = dict(message.application_properties)
    assert properties["model"] == name and properties["version"] == trained.version and properties["source"] == "mlflow"
    assert teams_subscription_accepts(properties)
    assert gate.reports(model=name)[0]["report_id"] == report["report_id"]

    # 3. the `teams` subscription delivers it to notify_teams, which posts to the Teams endpoint
    inbox = TeamsInbox(str(tmp_path / "teams"))
    try:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", inbox.url)
        delivered = func.ServiceBusMessage(body=b"".join(message.body), content_type=message.content_type)
        gate.call("notify_teams", delivered)
    finally:
        inbox.stop()
    (card,) = inbox.received
    assert card["attachments"][0]["content"]["version"] == "1.4"

    # 4. rendered by the official renderer, read as a release manager would
    chromium = chromium_path()
    if chromium is None or not BUNDLE.exists():
        pytest.skip("Chromium or the adaptivecards renderer is not installed (make setup-browser setup-render)")
    result = render(card, chromium, BUNDLE, tmp_path, tmp_path / "journey.png")
    assert result["ok"] and result["errors"] == []
    text = result["text"]
    assert f"FAIL: {name} version {trained.version}" in text
    assert "SEC-001" in text and "run.params.db_password" in text

    # 5. the planted credential appears nowhere: message, card, logs
    everything = b"".join(message.body).decode() + json.dumps(card) + text + caplog.text
    assert PASSWORD not in everything and PASSWORD[:10] not in everything
