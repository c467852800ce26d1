"""TeamsNotifier against a real local HTTP server: 202 posted, 429/5xx retried, 4xx dropped, URL secret."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest

from shared.errors import TeamsUnavailable
from shared.sinks.teams import (
    MAX_BODY_BYTES,
    TeamsNotifier,
    build_card,
    notifier_from_settings,
)

from .helpers import make_report, many_findings


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


def test_202_is_posted(webhook, sample_report, caplog):
    result = TeamsNotifier(webhook.url).notify(sample_report)
    assert result.outcome == "posted" and result.status == 202
    assert len(webhook.requests) == 1
    req = webhook.requests[0]
    assert req.method == "POST"
    assert req.path.startswith(f"/workflows/{webhook.secret}/triggers/manual/paths/invoke?")
    assert req.headers["Content-Type"] == "application/json; charset=utf-8"
    assert req.json() == build_card(sample_report)
    assert len(req.body) == result.body_bytes < MAX_BODY_BYTES
    assert "card posted (HTTP 202" in caplog.text


def test_200_also_counts_as_posted(webhook, sample_report):
    webhook.answer(200, body=b"1")
    assert TeamsNotifier(webhook.url).notify(sample_report).outcome == "posted"


def test_sixty_findings_body_on_the_wire_is_under_24kb(webhook):
    report = make_report(findings=many_findings(60, text_len=2000))
    result = TeamsNotifier(webhook.url).notify(report)
    assert result.outcome == "posted"
    assert len(webhook.requests[0].body) < 24 * 1024
    card = webhook.requests[0].json()["attachments"][0]["content"]
    assert card["body"][0]["items"][1]["text"] == "FAIL: credit-risk-scorer version 17"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_raise_for_redelivery(webhook, sample_report, status):
    webhook.answer(status)
    with pytest.raises(TeamsUnavailable) as info:
        TeamsNotifier(webhook.url).notify(sample_report)
    assert info.value.status == status
    assert len(webhook.requests) == 1  # one attempt: Service Bus owns the retries


def test_retry_after_paces_the_redelivery(webhook, sample_report):
    webhook.answer(429, {"Retry-After": "3"})
    waits: list[float] = []
    with pytest.raises(TeamsUnavailable) as info:
        TeamsNotifier(webhook.url, sleep=waits.append).notify(sample_report)
    assert info.value.retry_after == 3.0
    assert waits == [3.0]
    webhook.answer(429, {"Retry-After": "300"})
    with pytest.raises(TeamsUnavailable):
        TeamsNotifier(webhook.url, sleep=waits.append, backoff_cap=10).notify(sample_report)
    assert waits == [3.0, 10]


def test_redelivery_after_a_transient_error_posts(webhook, sample_report):
    webhook.answer(503)
    notifier = TeamsNotifier(webhook.url)
    with pytest.raises(TeamsUnavailable):
        notifier.notify(sample_report)
    assert notifier.notify(sample_report).outcome == "posted"
    assert len(webhook.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_other_client_errors_are_logged_and_dropped(webhook, sample_report, caplog, status):
    webhook.answer(status, body=b'{"error":{"code":"InvalidRequestContent","message":"bad card"}}')
    result = TeamsNotifier(webhook.url).notify(sample_report)
    assert result.outcome == "dropped" and result.status == status
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and f"HTTP {status}" in errors[-1].getMessage()
    assert "InvalidRequestContent" in errors[-1].getMessage()
    assert errors[-1].report_id == sample_report["report_id"]


def test_connection_refused_is_transient(sample_report):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/workflows/x/triggers/manual/paths/invoke?sig=SECRET-SIG-refused"
    with pytest.raises(TeamsUnavailable) as info:
        TeamsNotifier(url).notify(sample_report)
    assert "SECRET-SIG" not in str(info.value)


def test_timeout_is_transient(webhook, sample_report):
    webhook.delay = 1.5
    with pytest.raises(TeamsUnavailable):
        TeamsNotifier(webhook.url, timeout=0.3).notify(sample_report)


def test_pass_reports_are_not_posted(webhook, caplog):
    result = TeamsNotifier(webhook.url).notify(make_report(verdict="pass", findings=[]))
    assert result.outcome == "skipped"
    assert webhook.requests == []
    assert "pass report not posted" in caplog.text


def test_the_same_report_is_posted_once_per_notifier(webhook, sample_report):
    notifier = TeamsNotifier(webhook.url)
    assert notifier.notify(sample_report).outcome == "posted"
    assert notifier.notify(sample_report).outcome == "skipped"
    assert len(webhook.requests) == 1


def test_bad_urls_are_refused_without_echoing_them():
    with pytest.raises(ValueError) as info:
        TeamsNotifier("file:///etc/passwd?sig=SECRET-SIG-bad")
    assert "SECRET-SIG" not in str(info.value)


def test_notifier_from_settings(monkeypatch, webhook):
    monkeypatch.delenv("TEAMS_WEBHOOK_URL", raising=False)
    assert notifier_from_settings() is None
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", webhook.url)
    notifier = notifier_from_settings()
    assert notifier is not None
    assert notifier.notify(make_report()).outcome == "posted"


def test_the_url_is_never_logged_raised_or_shown(webhook, sample_report, caplog):
    """Every path (posted, throttled, failing, dropped with the URL echoed back, unreachable)."""
    marker = webhook.secret
    notifier = TeamsNotifier(webhook.url, sleep=lambda s: None)
    texts = [repr(notifier), str(notifier)]

    notifier.notify(sample_report)  # 202
    for status in (429, 500):
        webhook.answer(status, {"Retry-After": "1"}, body=webhook.url.encode())
        with pytest.raises(TeamsUnavailable) as info:
            notifier.notify(make_report(report_id=f"{status:064x}"))
        texts += [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
    # A 400 whose body echoes the URL (as some gateways do): the log line must not carry it.
    webhook.answer(400, body=("InvalidTemplate at " + webhook.url).encode())
    assert notifier.notify(make_report(report_id="4" * 64)).outcome == "dropped"

    webhook.delay = 1.0
    with pytest.raises(TeamsUnavailable) as info:
        TeamsNotifier(webhook.url, timeout=0.2).notify(make_report(report_id="5" * 64))
    texts += [str(info.value), "".join(traceback.format_exception(info.value))]

    logged = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    assert "HTTP 400" in logged and "HTTP 429" in logged  # the logs are there ...
    assert marker not in logged  # ... without the URL
    for text in texts:
        assert marker not in text
