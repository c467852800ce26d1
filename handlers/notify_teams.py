"""`notify_teams`: posts a Teams card for each report on the Service Bus subscription `teams`.

The subscription receives the non-pass reports of the findings topic. Outcomes:

* card posted (2xx), a pass report, a malformed body, an unset webhook URL, or a 4xx other than
  429 from Teams: the function returns, so the message is completed (no poison loop);
* 429, 5xx, timeout or connection error: :class:`shared.sinks.teams.TeamsUnavailable` is
  raised, so Service Bus redelivers the message and dead-letters it after the max delivery count.

`function_app.py` registers this blueprint with ``app.register_functions(notify_teams.bp)``.
The import stays cheap: the sink is imported on first use.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import settings

logger = logging.getLogger("evidence_gate.notify_teams")

bp = func.Blueprint()

_notifier = None
_notifier_key: int | None = None


def _get_notifier(url: str):
    """One notifier per URL, kept across invocations (it remembers what it already posted)."""
    global _notifier, _notifier_key
    from shared.sinks.teams import TeamsNotifier

    key = hash(url)
    if _notifier is None or _notifier_key != key:
        _notifier, _notifier_key = TeamsNotifier(url), key
    return _notifier


def parse_report(body: bytes) -> dict | None:
    """The report in a message body, or None when it is not a JSON report object."""
    try:
        report = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("verdict"), str):
        return None
    return report


@bp.function_name("notify_teams")
@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%EVIDENCE_GATE_TOPIC%",
    subscription_name="teams",
    connection="EVIDENCE_GATE_SERVICEBUS",
)
def notify_teams(msg: func.ServiceBusMessage) -> None:
    message_id = getattr(msg, "message_id", None)
    extra = {"message_id": message_id, "delivery_count": getattr(msg, "delivery_count", None)}
    body = msg.get_body() or b""
    report = parse_report(body)
    if report is None:
        logger.error(
            "notify_teams: message body is not a report (%d bytes); completed", len(body), extra=extra
        )
        return
    extra.update(report_id=report.get("report_id"), verdict=report.get("verdict"))

    url = settings.get("TEAMS_WEBHOOK_URL")
    if not url:
        logger.error("notify_teams: TEAMS_WEBHOOK_URL is not set; card not posted", extra=extra)
        return
    try:
        notifier = _get_notifier(url)
    except ValueError as exc:  # the message never contains the URL
        logger.error("notify_teams: %s; card not posted", exc, extra=extra)
        return

    result = notifier.notify(report)  # TeamsUnavailable propagates: Service Bus redelivers
    extra.update(outcome=result.outcome, status=result.status)
    logger.info("notify_teams: %s", result.outcome, extra=extra)
