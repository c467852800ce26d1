"""The local notifier pass (`evidence-gate serve`): stored reports to the webhook, once each."""

from __future__ import annotations

from shared.sinks.store import ReportStore
from shared.sinks.teams import TeamsNotifier, notify_pending

from .helpers import make_report


def test_stored_reports_are_posted_once(tmp_path, webhook):
    store = ReportStore(str(tmp_path / "reports.sqlite"))
    store.save(make_report(report_id="a" * 64))
    store.save(make_report(report_id="b" * 64, verdict="warn"))
    store.save(make_report(report_id="c" * 64, verdict="pass", findings=[]))
    notifier = TeamsNotifier(webhook.url, backoff_cap=0)

    webhook.answer(429, {"Retry-After": "30"})
    assert notify_pending(store, notifier)["retry"] == 1  # throttled: nothing marked, tried next pass
    assert len(store.unnotified()) == 2

    assert notify_pending(store, notifier) == {"posted": 2, "skipped": 0, "dropped": 0, "retry": 0}
    assert notify_pending(store, notifier) == {"posted": 0, "skipped": 0, "dropped": 0, "retry": 0}
    posted = [r.json()["attachments"][0]["content"]["body"][0]["items"][1]["text"] for r in webhook.requests[1:]]
    assert sorted(posted) == ["FAIL: credit-risk-scorer version 17", "WARN: credit-risk-scorer version 17"]


def test_a_rejected_card_is_not_retried_forever(tmp_path, webhook):
    store = ReportStore(str(tmp_path / "reports.sqlite"))
    store.save(make_report(report_id="d" * 64))
    webhook.answer(400)
    assert notify_pending(store, TeamsNotifier(webhook.url))["dropped"] == 1
    assert store.unnotified() == []
