"""The whole artifact tree of a run or a model directory, within a bound on the directories one
check lists (SEC-002 looks for credential files at every depth: ``deploy/ssh/id_rsa``).

:meth:`RegistryClient.list_artifacts` lists one level (one request per directory); :func:`list_tree`
walks the tree breadth first. The directories a check may list, its roots included, are shared
by the check's walks (:class:`ListingBudget`, the policy's ``max_artifact_dirs``); the directories
left unlisted when the budget runs out are recorded as unreadable evidence (EVD-008), so a cut
listing is never a silent pass.
"""

from __future__ import annotations

import threading
from collections import deque

from shared.evidence.model import Unreadable
from shared.evidence.registry import RegistryClient

DEFAULT_MAX_DIRS = 50


class ListingBudget:
    """How many more directories this check may list; thread-safe (a check's walks run side by side)."""

    def __init__(self, max_dirs: int = DEFAULT_MAX_DIRS):
        if max_dirs < 1:
            raise ValueError("max_dirs must be at least 1")
        self.max_dirs = max_dirs
        self._left = max_dirs
        self._lock = threading.Lock()
        self._unlisted: dict[str, int] = {}  # location -> directories not listed

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def note_unlisted(self, location: str, count: int) -> None:
        with self._lock:
            self._unlisted[location] = self._unlisted.get(location, 0) + count

    def unreadable(self) -> list[Unreadable]:
        """One entry per artifact location whose listing the bound cut short."""
        with self._lock:
            return [
                Unreadable(
                    part="artifact_listing",
                    what=f"artifact listing ({count} director{'y' if count == 1 else 'ies'} not listed)",
                    reason=f"the check lists at most {self.max_dirs} artifact directories",
                    fix="raise the policy's max_artifact_dirs, or keep fewer directories in the run's and model's artifacts",
                    location=location,
                )
                for location, count in sorted(self._unlisted.items())
            ]


def list_tree(client: RegistryClient, location: str | None, budget: ListingBudget) -> list[str]:
    """Every file and directory below ``location`` as paths relative to it (directories end with
    ``/``: ``code/``, ``deploy/ssh/id_rsa``), sorted; one request per directory listed."""
    if not location:
        return []
    root = location.rstrip("/")
    found: list[str] = []
    pending: deque[str] = deque([""])
    while pending:
        if not budget.take():
            budget.note_unlisted(location, len(pending))
            break
        prefix = pending.popleft()
        for name in client.list_artifacts(f"{root}/{prefix.rstrip('/')}" if prefix else location):
            found.append(prefix + name)
            if name.endswith("/"):
                pending.append(prefix + name)
    return sorted(found)
