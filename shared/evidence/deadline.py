"""One deadline per check, across every registry request and retry of that check.

:class:`~shared.evidence.registry.RegistryClient` makes one :class:`Deadline` per check (the
engine makes one client per check) and hands it to every backend call. A backend bounds each
HTTP timeout and each retry wait by :meth:`Deadline.remaining`, and gives up with
:class:`~shared.errors.DeadlineExceeded` when nothing is left, so a check always ends: a
webhook sender gets its 503 before it gives up itself, and a sweep moves on.

Defaults: ``EVIDENCE_GATE_CHECK_DEADLINE_SECONDS`` (30 s) for event-driven checks and the CLI,
``EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS`` (120 s) for each check of a reconcile sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.errors import DeadlineExceeded

DEFAULT_CHECK_SECONDS = 30.0
DEFAULT_RECONCILE_SECONDS = 120.0


class Deadline:
    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic):
        if seconds <= 0:
            raise ValueError("a deadline is a positive number of seconds")
        self.seconds = float(seconds)
        self._clock = clock
        self._end = clock() + self.seconds

    def remaining(self) -> float:
        """Seconds left (0 when passed)."""
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0

    def timeout(self, cap: float) -> float:
        """The timeout for one request: ``cap`` or what is left, whichever is smaller."""
        return max(0.001, min(cap, self.remaining()))

    def check(self, registry: str, what: str) -> None:
        """Raise DeadlineExceeded when the deadline has passed."""
        if self.expired():
            raise DeadlineExceeded(registry, what, self.seconds)

    def allows_wait(self, seconds: float) -> bool:
        """Whether waiting ``seconds`` (a retry's backoff) still leaves time for a request."""
        return seconds < self.remaining()
