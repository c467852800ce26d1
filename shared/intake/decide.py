"""What becomes of an intake message after its check: a pure function of (message, error, now).

- no error: **done** (the message is deleted);
- :class:`~shared.errors.VersionNotReady` for a still-running source run: **retry** after as long
  as the run has already been waiting (it is likely done by then), at least
  ``not_ready_seconds`` and at most ``not_ready_max_seconds``, until the policy's
  ``running_run_wait_minutes`` after acceptance are over (then the engine reports LIN-002 itself,
  so one more check is enough);
- any other error with ``retry`` set (registry or state store unavailable, rate limited,
  Service Bus down, a missing setting, a version pending registration): **retry** with exponential
  backoff from ``base_seconds``, never longer than ``max_backoff_seconds`` (so after an outage
  every message is tried again within that cap of the return), raised to the error's own
  ``retry_after`` hint within the cap; bounded by ``max_age_seconds`` since acceptance and
  ``max_attempts``: then **poison** with the reason;
- an error without ``retry`` (bad input): **poison** with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import EvidenceGateError, VersionNotReady
from shared.intake.message import IntakeMessage

DONE, RETRY, POISON = "done", "retry", "poison"
DEFAULT_WAIT_MINUTES = 60  # the default policy's running_run_wait_minutes


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_backoff_seconds: float = 30.0
    max_age_seconds: float = 3600.0
    max_attempts: int = 200
    not_ready_seconds: float = 60.0
    not_ready_max_seconds: float = 600.0


@dataclass(frozen=True)
class Decision:
    action: str  # done | retry | poison
    delay_seconds: float = 0.0
    reason: str | None = None


def decide(message: IntakeMessage, error: EvidenceGateError | None, now_ms: int, policy: RetryPolicy) -> Decision:
    if error is None:
        return Decision(DONE)
    age = max(0.0, (now_ms - message.accepted_ms) / 1000)
    if isinstance(error, VersionNotReady) and error.run_id:
        wait = (error.wait_minutes if error.wait_minutes is not None else DEFAULT_WAIT_MINUTES) * 60.0
        if age >= wait + policy.not_ready_max_seconds:
            return Decision(POISON, reason=f"still not ready {age / 60:.0f} min after it was accepted"
                                           f" (the policy waits {wait / 60:.0f} min): {error}")
        delay = min(max(age, policy.not_ready_seconds), policy.not_ready_max_seconds)
        if age < wait:  # re-check right after the wait ends rather than long after it
            delay = min(delay, wait - age + 1)
        return Decision(RETRY, delay_seconds=delay, reason=str(error))
    if not error.retry:
        return Decision(POISON, reason=f"{type(error).__name__}: {error}")
    if age >= policy.max_age_seconds or message.attempt >= policy.max_attempts:
        return Decision(POISON, reason=f"gave up after {message.attempt} attempt(s) over {age / 60:.0f} min"
                                       f" ({type(error).__name__}): {error}")
    delay = min(policy.base_seconds * 2 ** (message.attempt - 1), policy.max_backoff_seconds)
    if error.retry_after:
        delay = max(delay, min(float(error.retry_after), policy.max_backoff_seconds))
    return Decision(RETRY, delay_seconds=delay, reason=str(error))
