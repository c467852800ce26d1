"""The Service Bus sender seam for tests: a stand-in for the SDK's topic sender that keeps the exact
``azure.servicebus.ServiceBusMessage`` objects the publisher hands it (or raises given errors)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NAMESPACE = "gate-ns.servicebus.windows.net"
TOPIC = "evidence-gate-findings"


class FakeSender:
    def __init__(self, error: BaseException | None = None, errors: list[BaseException] | None = None):
        self.sent: list[Any] = []
        self.errors = list(errors or ([error] if error else []))
        self.opened = 0
        self.closed = 0
        self._lock = threading.Lock()

    def send_messages(self, message: Any) -> None:
        with self._lock:
            if self.errors:
                raise self.errors.pop(0)
            self.sent.append(message)

    @contextmanager
    def factory(self) -> Iterator[FakeSender]:
        self.opened += 1
        try:
            yield self
        finally:
            self.closed += 1


def capturing_publisher(sender: FakeSender):
    """A real ServiceBusPublisher publishing through ``sender`` (for ``Services(publisher=...)``)."""
    from shared.sinks.servicebus import ServiceBusPublisher

    return ServiceBusPublisher(sender.factory, topic=TOPIC, namespace=NAMESPACE)
