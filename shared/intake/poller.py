"""Queue-trigger functions in ``evidence-gate serve``, polled the way the Functions host polls a
Storage queue (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger,
"Polling algorithm", "Poison messages", "Concurrency"; host.json ``extensions.queues``):

- receive up to ``batchSize`` messages with a visibility timeout (the message is invisible to the
  other instances while it is checked; ``EVIDENCE_GATE_INTAKE_VISIBILITY_SECONDS``), invoke the
  function for each, concurrently;
- a normal return deletes the message; an exception leaves it on the queue, visible again after
  host.json ``visibilityTimeout``; once it has been dequeued ``maxDequeueCount`` times it goes to
  the poison queue (``<queue>-poison``, with the failure as its reason) and is deleted;
- an empty queue is polled again after an interval that doubles from :data:`MIN_POLL_SECONDS` up
  to ``maxPollingInterval``.

Only the intake connection (``EVIDENCE_GATE_INTAKE``) is served: it is the app's one queue trigger.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azure.functions.queue import QueueMessage as FunctionQueueMessage

from shared import settings
from shared.errors import EvidenceGateError

if TYPE_CHECKING:
    from shared.services import Services

log = logging.getLogger("evidence_gate.serve")

MIN_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class QueueOptions:
    """host.json ``extensions.queues`` (the Functions defaults where absent)."""

    batch_size: int = 16
    max_dequeue_count: int = 5
    visibility_timeout: int = 0  # seconds before a failed message is visible again
    max_polling_interval: int = 60

    @classmethod
    def from_host_json(cls, path: Path) -> QueueOptions:
        try:
            queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        except (OSError, ValueError):
            return cls()
        return cls(batch_size=int(queues.get("batchSize", 16)), max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
                   visibility_timeout=_timespan(queues.get("visibilityTimeout", "00:00:00")),
                   max_polling_interval=_timespan(queues.get("maxPollingInterval", "00:01:00")) or 60)


def _timespan(text: str) -> int:
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2})", str(text))
    if not match:
        return 0
    h, m, s = (int(g) for g in match.groups())
    return h * 3600 + m * 60 + s


class QueuePoller:
    """One queue-trigger function on one queue, in a daemon thread."""

    def __init__(self, name: str, invoke: Callable[[FunctionQueueMessage], object], queue, *, options: QueueOptions,
                 visibility_seconds: int, stop: threading.Event):
        self.name, self.invoke, self.queue = name, invoke, queue
        self.options, self.visibility_seconds, self.stop = options, visibility_seconds, stop
        self.thread = threading.Thread(target=self.run, name=f"queue-{name}", daemon=True)

    def run(self) -> None:
        interval = MIN_POLL_SECONDS
        with ThreadPoolExecutor(max(1, self.options.batch_size), thread_name_prefix=f"queue-{self.name}") as pool:
            while not self.stop.is_set():
                try:
                    batch = self.queue.receive(self.options.batch_size, self.visibility_seconds)
                except EvidenceGateError as exc:
                    log.warning("serve: %s: cannot receive from %s: %s", self.name, self.queue.name, exc)
                    batch = []
                if not batch:
                    self.stop.wait(interval)
                    interval = min(interval * 2, self.options.max_polling_interval)
                    continue
                interval = MIN_POLL_SECONDS
                list(pool.map(self.guarded, batch))

    def guarded(self, message) -> None:
        try:
            self.one(message)
        except Exception:  # a bug here must not stop the polling; the message becomes visible again
            log.exception("serve: %s: message %s could not be handled", self.name, message.id)

    def one(self, message) -> None:
        value = FunctionQueueMessage(id=message.id, body=message.content, dequeue_count=message.dequeue_count,
                                     insertion_time=message.inserted_on, expiration_time=message.expires_on,
                                     time_next_visible=message.next_visible_on, pop_receipt=message.pop_receipt)
        try:
            self.invoke(value)
        except Exception as exc:  # the runtime fails the invocation: the message stays (or is poisoned)
            self._failed(message, exc)
            return
        try:
            self.queue.delete(message)
        except EvidenceGateError as exc:  # it becomes visible again and is checked again (deduplicated)
            log.warning("serve: %s: could not delete message %s: %s", self.name, message.id, exc)

    def _failed(self, message, exc: Exception) -> None:
        what = f"{type(exc).__name__}: {str(exc)[:300]}"
        try:
            if message.dequeue_count >= self.options.max_dequeue_count:
                self.queue.dead_letter(message.content, f"{self.name} failed {message.dequeue_count} times"
                                                        f" (maxDequeueCount {self.options.max_dequeue_count}): {what}",
                                       attempts=message.dequeue_count)
                self.queue.delete(message)
                log.error("serve: %s: message %s moved to the poison queue: %s", self.name, message.id, what)
            else:
                self.queue.release(message, self.options.visibility_timeout)
                log.warning("serve: %s: message %s failed (dequeue %d): %s; retried", self.name, message.id,
                            message.dequeue_count, what)
        except EvidenceGateError as err:
            log.warning("serve: %s: message %s failed (%s) and could not be released: %s", self.name, message.id,
                        what, err)


class QueueHost:
    """The pollers of the app's queue-trigger functions whose connection is configured."""

    def __init__(self, functions: Iterable, host_json: Path, services: Callable[[], Services]):
        """``services()``: the app's services, whose ``intake`` queue the pollers receive from (built
        here only when the intake is configured)."""
        from shared import intake

        self.stop = threading.Event()
        self.pollers: list[QueuePoller] = []
        self.off: list[str] = []
        queue = services().intake if intake.configured() else None
        for function in functions:
            connection = function.trigger.get("connection")
            if connection != settings.INTAKE_CONNECTION or queue is None:
                self.off.append(function.name)
                continue
            self.pollers.append(QueuePoller(function.name, function.invoke, queue,
                                            options=QueueOptions.from_host_json(host_json),
                                            visibility_seconds=intake.visibility_seconds(), stop=self.stop))

    def routes(self) -> Iterable[str]:
        for poller in self.pollers:
            yield f"  {poller.name:<30} queue '{poller.queue.name}'"
        for name in self.off:
            yield f"  {name:<30} queue [off] ({settings.INTAKE_CONNECTION} not set: deliveries are checked synchronously)"

    def start(self) -> None:
        for poller in self.pollers:
            poller.thread.start()

    def shutdown(self, timeout: float = 5) -> None:
        self.stop.set()
        for poller in self.pollers:
            if poller.thread.is_alive():
                poller.thread.join(timeout)
