"""``evidence-gate serve`` whose Service Bus messages are seen by the tests: the real CLI in its own
process, publishing through the real ``ServiceBusPublisher`` (``shared.pipeline.install_publisher``,
the seam for hosts that bring their own Service Bus client) to a sender that appends each
message's ``message_id`` to the file ``EVIDENCE_GATE_TEST_MESSAGE_IDS`` (one line each). There is
no Service Bus emulator to talk AMQP to; the message ids are what duplicate detection keys on.

    python -m tests.support.capturing_serve serve --no-timer --port 7071
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.servicebus import NAMESPACE, TOPIC


class FileSender:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def send_messages(self, message) -> None:
        with self._lock, open(self.path, "a") as fh:
            fh.write(f"{message.message_id}\n")

    @contextmanager
    def factory(self) -> Iterator[FileSender]:
        yield self


def main(argv: list[str]) -> int:
    from shared import pipeline
    from shared.cli import main as cli
    from shared.sinks.servicebus import ServiceBusPublisher

    os.environ["EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace"] = NAMESPACE
    sender = FileSender(os.environ["EVIDENCE_GATE_TEST_MESSAGE_IDS"])
    pipeline.install_publisher(ServiceBusPublisher(sender.factory, topic=TOPIC, namespace=NAMESPACE))
    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
