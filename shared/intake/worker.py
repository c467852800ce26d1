"""The queue-triggered side of the intake: decode a message, run the check, act on the decision
(:func:`shared.intake.decide.decide`).

Known errors never raise out of :func:`handle` (the host would retry on top of our own schedule):
a retry is a new message with a visibility delay, a give-up is a poison-queue message with its
reason. Only a failure to put that message on a queue, or an unexpected exception, raises: the
host then keeps the original message and redelivers it (and moves it to the poison queue after
``maxDequeueCount`` deliveries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.errors import BadInput, EvidenceGateError
from shared.intake.decide import DONE, RETRY, Decision, RetryPolicy, decide
from shared.intake.message import decode
from shared.intake.queue import IntakeQueue
from shared.sources import RegistryEvent

log = logging.getLogger("evidence_gate.intake")


def handle(body: bytes | str, *, queue: IntakeQueue, check: Callable[[RegistryEvent], object],
           policy: RetryPolicy) -> Decision:
    """Check the event in ``body`` with ``check`` (today ``pipeline.process``) and act on the decision."""
    try:
        message = decode(body)
    except BadInput as exc:
        log.error("intake: dead-lettered an unreadable message: %s", exc)
        queue.dead_letter(body, str(exc))
        return Decision("poison", reason=str(exc))
    event = message.event
    error: EvidenceGateError | None = None
    try:
        outcome = check(event)
    except EvidenceGateError as exc:
        error = exc
    decision = decide(message, error, queue.now_ms(), policy)
    extra = {"event_id": event.event_id, "attempt": message.attempt}
    if decision.action == DONE:
        log.info("intake: %s: %s (attempt %d)", event.describe(), getattr(outcome, "status", "done"), message.attempt,
                 extra=extra)
    elif decision.action == RETRY:
        queue.put(message.next_attempt(), decision.delay_seconds)
        log.warning("intake: %s: %s; checked again in %.0f s (attempt %d)", event.describe(), decision.reason,
                    decision.delay_seconds, message.attempt, extra=extra)
    else:
        queue.dead_letter(body, decision.reason or "", attempts=message.attempt)
        log.error("intake: %s dead-lettered: %s", event.describe(), decision.reason, extra=extra)
    return decision
