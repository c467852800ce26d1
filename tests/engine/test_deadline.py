"""The per-check deadline: remaining time, request timeouts, and DeadlineExceeded once passed."""

from __future__ import annotations

import pytest

from shared.errors import DeadlineExceeded
from shared.evidence.deadline import Deadline


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_deadline_bounds_timeouts_and_waits_then_expires():
    clock = Clock()
    deadline = Deadline(30, clock=clock)
    assert deadline.remaining() == 30 and deadline.timeout(15) == 15
    clock.now += 25
    assert deadline.timeout(15) == pytest.approx(5)
    assert deadline.allows_wait(4) and not deadline.allows_wait(6)
    deadline.check("http://r", "get run")  # still time: no error
    clock.now += 5
    assert deadline.expired()
    with pytest.raises(DeadlineExceeded) as info:
        deadline.check("http://r", "get run")
    assert info.value.transient and info.value.http_status == 503 and info.value.exit_code == 3
    assert "deadline of 30 s" in str(info.value)


def test_deadline_must_be_positive():
    with pytest.raises(ValueError):
        Deadline(0)
