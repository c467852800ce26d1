"""The queue-triggered side of the intake: decode a message, run the check, act on the decision
(:func:`shared.intake.decide.decide`).

Copies of one event (redeliveries, an instance's messages visible again after it died) are
checked by one instance at a time: the check holds the event's lease in the shared state store
(``StateStore.claim``) for at most :func:`lease_seconds`; a copy that finds the lease held is
retried later (:class:`~shared.errors.EventInProgress`) and then reuses the stored report, so the
event gets one report and one Service Bus message id.

Known errors never raise out of :func:`handle` (the host would retry on top of our own schedule):
a retry is a new message with a visibility delay, a give-up is a poison-queue message with its
reason. Only a failure to put that message on a queue, or an unexpected exception, raises: the
host then keeps the original message and redelivers it (and moves it to the poison queue after
``maxDequeueCount`` deliveries).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from shared.errors import BadInput, EventInProgress, EvidenceGateError
from shared.intake.decide import DONE, RETRY, Decision, RetryPolicy, decide
from shared.intake.message import decode
from shared.intake.queue import IntakeQueue
from shared.sources import RegistryEvent

log = logging.getLogger("evidence_gate.intake")

OWNER = secrets.token_hex(8)  # this process, as the owner of the leases it takes
LEASE_MARGIN_SECONDS = 15  # publishing and storing after the check's deadline


def lease_seconds() -> float:
    """A check never runs longer than its deadline; the lease outlives it by a margin."""
    from shared.evidence.registry import check_deadline_seconds

    return check_deadline_seconds() + LEASE_MARGIN_SECONDS


def handle(body: bytes | str, *, queue: IntakeQueue, check: Callable[[RegistryEvent], object],
           leases: Callable[[], object | None], policy: RetryPolicy) -> Decision:
    """Check the event in ``body`` with ``check`` (today ``pipeline.process``) under the event's
    lease in ``leases()`` (the state store; None: no lease) and act on the decision."""
    try:
        message = decode(body)
    except BadInput as exc:
        log.error("intake: dead-lettered an unreadable message: %s", exc)
        queue.dead_letter(body, str(exc))
        return Decision("poison", reason=str(exc))
    event = message.event
    error: EvidenceGateError | None = None
    outcome = None
    try:
        outcome = _leased(event, queue, check, leases)
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


def _leased(event: RegistryEvent, queue: IntakeQueue, check, leases):
    store = leases() if event.event_id else None
    if store is None:
        return check(event)
    name = f"intake|{event.source}|{event.event_type}|{event.event_id}"
    now = queue.now_ms()
    if not store.claim(name, OWNER, now + int(lease_seconds() * 1000), now):
        raise EventInProgress(f"another instance is checking event {event.event_id}; its report is reused")
    try:
        return check(event)
    finally:
        try:
            store.release(name, OWNER)
        except EvidenceGateError as exc:  # it expires by itself
            log.warning("intake: could not release the lease of event %s: %s", event.event_id, exc)
