"""``evidence-gate serve`` whose Service Bus messages are seen by the tests: the real CLI in its own
process (``evidence-gate serve``'s own loop around a ``LocalHost`` with services of its own),
publishing through the real ``ServiceBusPublisher`` to a sender that appends each
message's ``message_id`` to the file ``EVIDENCE_GATE_TEST_MESSAGE_IDS`` (one line each). There is
no Service Bus emulator to talk AMQP to; the message ids are what duplicate detection keys on.

    python -m tests.support.capturing_serve --port 7071
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
    import argparse
    import dataclasses

    from shared.cli import serve_until_stopped
    from shared.serve import LocalHost
    from shared.services import Once, Services
    from shared.sinks.servicebus import ServiceBusPublisher

    parser = argparse.ArgumentParser(prog="capturing_serve")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args(argv).port
    sender = FileSender(os.environ["EVIDENCE_GATE_TEST_MESSAGE_IDS"])
    publisher = ServiceBusPublisher(sender.factory, topic=TOPIC, namespace=NAMESPACE)
    services = Once(lambda: dataclasses.replace(Services.from_settings(), publisher=publisher))
    return serve_until_stopped(LocalHost("127.0.0.1", port, services=services, background=False))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
