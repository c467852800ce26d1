"""`evidence-gate serve`'s queue polling against Azurite, like the Functions host: a normal return
deletes the message; an exception leaves it on the queue (visible again after host.json
`visibilityTimeout`), and after `maxDequeueCount` deliveries it moves to the poison queue with the
failure as its reason."""

from __future__ import annotations

import json
import secrets
import threading
import time

from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy

from shared.intake.poller import QueueOptions, QueuePoller
from shared.intake.queue import IntakeQueue


def queues(azurite) -> IntakeQueue:
    name = f"poller-{secrets.token_hex(4)}"
    return IntakeQueue(*(QueueClient.from_connection_string(
        azurite.connection_string, q, message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy()) for q in (name, f"{name}-poison")), create=True)


def run(queue: IntakeQueue, invoke, until) -> None:
    stop = threading.Event()
    poller = QueuePoller("intake", invoke, queue, options=QueueOptions(batch_size=4, max_dequeue_count=3,
                                                                      visibility_timeout=0, max_polling_interval=1),
                         visibility_seconds=30, stop=stop)
    poller.thread.start()
    deadline = time.monotonic() + 30
    try:
        while not until() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        poller.thread.join(10)
    assert until(), "condition not met within 30 s"


def test_a_message_is_deleted_after_a_normal_return(azurite):
    queue = queues(azurite)
    queue.queue.send_message("hello")
    seen = []
    run(queue, lambda message: seen.append((message.get_body(), message.dequeue_count)), lambda: seen)
    assert seen == [(b"hello", 1)]
    assert queue.queue.get_queue_properties().approximate_message_count == 0


def test_a_message_that_keeps_failing_moves_to_the_poison_queue_after_max_dequeue_count(azurite):
    queue = queues(azurite)
    queue.queue.send_message("boom")
    calls = []

    def invoke(message):
        calls.append(message.dequeue_count)
        raise RuntimeError("unexpected")

    run(queue, invoke, lambda: queue.poison_queue.get_queue_properties().approximate_message_count == 1)
    assert calls == [1, 2, 3]
    (letter,) = [json.loads(m.content) for m in queue.poison_queue.peek_messages()]
    assert letter["reason"] == "intake failed 3 times (maxDequeueCount 3): RuntimeError: unexpected"
    assert letter["message"] == "boom" and letter["attempts"] == 3
    assert queue.queue.get_queue_properties().approximate_message_count == 0


def test_host_json_gives_the_host_options():
    from pathlib import Path

    options = QueueOptions.from_host_json(Path(__file__).resolve().parents[2] / "host.json")
    assert options == QueueOptions(batch_size=16, max_dequeue_count=5, visibility_timeout=10, max_polling_interval=5)
