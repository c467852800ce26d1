"""The intake's decision after a check, as a pure function of (message, error, now): hand-built
errors, no servers."""

from __future__ import annotations

import pytest

from shared.errors import (
    BadInput,
    ConfigurationError,
    PublishError,
    RateLimited,
    RegistryUnavailable,
    StateStoreUnavailable,
    Unauthorized,
    VersionNotReady,
)
from shared.intake.decide import DONE, POISON, RETRY, RetryPolicy, decide
from shared.intake.message import IntakeMessage
from shared.sources import REGISTRATION, RegistryEvent

POLICY = RetryPolicy()
EVENT = RegistryEvent("mlflow", "model_version.created", REGISTRATION, event_id="d-1", registry="http://r",
                      model="churn", version="3")
T0 = 1_767_225_600_000


def message(attempt: int = 1) -> IntakeMessage:
    return IntakeMessage(EVENT, accepted_ms=T0, attempt=attempt)


def at(seconds: float) -> int:
    return T0 + int(seconds * 1000)


def running(wait_minutes: int | None = 60) -> VersionNotReady:
    return VersionNotReady("http://r", "churn", "3", run_id="run-1", run_status="RUNNING", wait_minutes=wait_minutes)


def test_a_check_without_error_is_done():
    assert decide(message(), None, at(1), POLICY).action == DONE


def test_a_registry_outage_backs_off_exponentially_up_to_the_cap():
    error = RegistryUnavailable("http://r", "HTTP 503")
    delays = [decide(message(n), error, at(10), POLICY).delay_seconds for n in range(1, 9)]
    assert delays == [2, 4, 8, 16, 30, 30, 30, 30]
    assert {decide(message(n), error, at(10), POLICY).action for n in range(1, 9)} == {RETRY}


def test_the_cap_keeps_every_message_within_a_minute_of_a_two_minute_outage_ending():
    """Simulate the schedule: attempts fail during 120 s (each check takes 3 s to fail); the first
    attempt after the outage ends is never more than 60 s after it ended."""
    error = RegistryUnavailable("http://r", "HTTP 503")
    for start in range(0, 120, 7):  # deliveries accepted at different moments of the outage
        now, attempt = float(start), 1
        while now < 120:
            now += 3  # the failing check
            decision = decide(IntakeMessage(EVENT, accepted_ms=at(start), attempt=attempt), error, at(now), POLICY)
            assert decision.action == RETRY
            now += decision.delay_seconds
            attempt += 1
        assert now - 120 <= POLICY.max_backoff_seconds + 3 < 60


def test_a_retry_after_hint_lengthens_the_delay_within_the_cap():
    assert decide(message(1), RateLimited("http://r", "429", retry_after=12), at(1), POLICY).delay_seconds == 12
    assert decide(message(1), RateLimited("http://r", "429", retry_after=600), at(1), POLICY).delay_seconds == 30


@pytest.mark.parametrize("error", [StateStoreUnavailable("HTTP 503"), PublishError("down"),
                                   ConfigurationError("MLFLOW_TRACKING_URI is not set"),
                                   VersionNotReady("http://r", "churn", "3")])
def test_every_error_with_retry_set_is_retried(error):
    decision = decide(message(3), error, at(60), POLICY)
    assert decision.action == RETRY and decision.delay_seconds == 8 and str(error) in decision.reason


def test_retries_end_in_the_poison_queue_after_the_maximum_age():
    error = RegistryUnavailable("http://r", "connection refused")
    assert decide(message(50), error, at(3599), POLICY).action == RETRY
    decision = decide(message(51), error, at(3600), POLICY)
    assert decision.action == POISON
    assert decision.reason.startswith("gave up after 51 attempt(s) over 60 min (RegistryUnavailable): registry")


def test_retries_end_in_the_poison_queue_after_the_maximum_attempts():
    decision = decide(message(POLICY.max_attempts), StateStoreUnavailable("HTTP 500"), at(100), POLICY)
    assert decision.action == POISON and f"after {POLICY.max_attempts} attempt(s)" in decision.reason


@pytest.mark.parametrize("error", [BadInput("registry URI 'ftp://x' is not supported"), Unauthorized("bad signature")])
def test_an_error_without_retry_is_poisoned_at_once_with_its_reason(error):
    decision = decide(message(1), error, at(1), POLICY)
    assert decision.action == POISON and decision.reason == f"{type(error).__name__}: {error}"


def test_a_running_run_is_rechecked_after_as_long_as_it_has_waited():
    assert decide(message(1), running(), at(5), POLICY).delay_seconds == 60  # at least not_ready_seconds
    assert decide(message(2), running(), at(200), POLICY).delay_seconds == 200
    assert decide(message(5), running(), at(2000), POLICY).delay_seconds == 600  # at most not_ready_max_seconds
    assert decide(message(1), running(), at(5), POLICY).reason.endswith("retry later")


def test_a_running_run_is_rechecked_right_after_the_policy_wait_ends():
    decision = decide(message(9), running(wait_minutes=10), at(590), POLICY)
    assert decision.action == RETRY and decision.delay_seconds == 11


def test_a_run_still_running_long_after_the_wait_is_poisoned():
    """The engine reports LIN-002 once the wait is over; still "not ready" after that means its
    clock disagrees: give up rather than retry forever."""
    assert decide(message(9), running(wait_minutes=10), at(600 + 599), POLICY).action == RETRY
    decision = decide(message(10), running(wait_minutes=10), at(600 + 600), POLICY)
    assert decision.action == POISON and "still not ready 20 min after it was accepted" in decision.reason


def test_the_settings_tune_the_policy(monkeypatch):
    from shared import intake

    monkeypatch.setenv("EVIDENCE_GATE_INTAKE_MAX_AGE_MINUTES", "5")
    monkeypatch.setenv("EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS", "2")
    assert intake.retry_policy() == RetryPolicy(max_age_seconds=300, not_ready_seconds=2)
    monkeypatch.setenv("EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS must be a number"):
        intake.retry_policy()
