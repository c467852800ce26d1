"""Reconcile's bookkeeping of a version that cannot be checked (``next_attempt``), on a fake clock
and a fake store: retried with backoff, reported ``unverifiable`` once after the policy's hours,
given up with a last report after its days, and never retried after that. No server: each sweep
that finds the version due is one call, the pending item going back into the next."""

from __future__ import annotations

from shared.policy import load_policy
from shared.reconcile import GIVEN_UP, MAX_BACKOFF_MS, NEVER_DUE_MS, next_attempt

HOUR_MS = 3_600_000
START_MS = 1_800_000_000_000


def sweeps_until_given_up(effective, start_ms: int = START_MS, every_ms: int = 15 * 60_000, limit_days: int = 30):
    """Sweeps every ``every_ms`` (the timer), each trying the version when it is due, until one
    gives it up; returns each attempt with the time it was made."""
    item, due, attempts = None, start_ms, []
    now = start_ms
    while now <= start_ms + limit_days * 24 * HOUR_MS:
        if now >= due:
            attempt = next_attempt(item, "churn", "7", None, None, "registry unavailable (503)", now, effective)
            attempts.append((now, attempt))
            item, due = attempt.item, attempt.due_ms
            if attempt.give_up:
                return attempts
        now += every_ms
    raise AssertionError(f"still retried after {limit_days} days")


def test_backoff_then_one_unverifiable_report_then_given_up_with_a_last_report():
    effective = load_policy().for_model("churn")
    assert (effective.unverifiable_after_hours, effective.give_up_after_days) == (24, 7)
    attempts = sweeps_until_given_up(effective, every_ms=60_000)  # a sweep a minute: the backoff decides
    gaps = [later - earlier for (earlier, _), (later, _) in zip(attempts, attempts[1:], strict=False)]
    assert gaps[:6] == [60_000 * m for m in (1, 2, 4, 8, 16, 32)]  # minutes
    assert set(gaps[6:]) == {MAX_BACKOFF_MS}  # then hourly
    reported = [(now, a) for now, a in attempts if a.report]
    assert len(reported) == 2  # once after 24 h (still retried), once when given up
    (at_24h, first_report), (at_7d, last) = reported
    assert 24 <= first_report.hours < 25 and not first_report.give_up and first_report.due_ms < NEVER_DUE_MS
    assert 7 * 24 <= last.hours < 7 * 24 + 1 and last.give_up
    assert last.item["kind"] == GIVEN_UP and last.due_ms == NEVER_DUE_MS and last.item["first_ms"] == START_MS
    assert len(attempts) < 7 * 24 + 10  # about hourly for a week, not for ever


def test_a_given_up_version_is_never_due_again_and_a_later_failure_says_so():
    effective = load_policy().for_model("churn")
    last = sweeps_until_given_up(effective)[-1][1]
    later = next_attempt(last.item, "churn", "7", None, None, "still 503", START_MS + 30 * 24 * HOUR_MS, effective)
    assert later.was_given_up and not later.report and later.due_ms == NEVER_DUE_MS
    assert later.item == last.item  # the first failure stays the one on record: no new week of retries


def test_the_policy_sets_both_bounds(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("unverifiable_after_hours: 2\ngive_up_after_days: 1\n")
    effective = load_policy(str(path)).for_model("churn")
    attempts = sweeps_until_given_up(effective)
    reported = [a for _, a in attempts if a.report]
    assert [round(a.hours) for a in reported] == [2, 24] and reported[-1].give_up


def test_given_up_before_the_unverifiable_hours_still_makes_one_last_report(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("unverifiable_after_hours: 48\ngive_up_after_days: 1\n")
    attempts = sweeps_until_given_up(load_policy(str(path)).for_model("churn"))
    assert [a.give_up for _, a in attempts if a.report] == [True]


def test_a_version_failing_again_after_a_success_starts_a_new_count():
    effective = load_policy().for_model("churn")
    cleared_then_failed = next_attempt(None, "churn", "7", "champion", None, "503", START_MS, effective)
    assert cleared_then_failed.item["attempts"] == 1 and cleared_then_failed.hours == 0
    assert cleared_then_failed.item["alias"] == "champion" and cleared_then_failed.due_ms == START_MS + 60_000
