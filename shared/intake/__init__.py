"""Durable intake: a verified, parsed delivery is put on an Azure Storage queue and answered 202;
the queue-triggered function ``intake`` (handlers/intake_queue.py) runs the check with scheduled
retries and dead-lettering (docs/deploy.md "Durable intake").

Configured by the connection ``EVIDENCE_GATE_INTAKE`` (:mod:`shared.intake.queue`); the queue is
the ``intake`` of the app's :class:`~shared.services.Services`. Not configured
(the local default of ``evidence-gate serve`` and the tests): every delivery is checked
synchronously inside its request, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import settings
from shared.intake.decide import RetryPolicy
from shared.sources import IGNORED, RegistryEvent

if TYPE_CHECKING:
    from shared.intake.queue import IntakeQueue

INTAKE = settings.INTAKE_CONNECTION


def configured() -> bool:
    return bool(settings.get(INTAKE) or settings.get(f"{INTAKE}__queueServiceUri"))


def offer(event: RegistryEvent, queue: IntakeQueue | None) -> bool:
    """Put ``event`` on the intake ``queue`` (the services' ``intake``): True when queued; False
    when there is no queue (not configured) or nothing to check (an ignored event is answered at
    once). Raises the taxonomy's errors (IntakeUnavailable, ConfigurationError): the sender retries."""
    if event.action == IGNORED or queue is None:
        return False
    queue.accept(event)
    return True


def retry_policy() -> RetryPolicy:
    """The retry policy with the settings' bounds (docs/settings.md)."""
    return RetryPolicy(max_age_seconds=_number("EVIDENCE_GATE_INTAKE_MAX_AGE_MINUTES") * 60,
                       not_ready_seconds=_number("EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS"))


def visibility_seconds() -> int:
    return max(1, int(_number("EVIDENCE_GATE_INTAKE_VISIBILITY_SECONDS")))


def _number(name: str) -> float:
    from shared.errors import ConfigurationError

    text = settings.get(name) or ""
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {text!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive")
    return value
