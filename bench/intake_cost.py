"""Benchmark: Storage queue transactions per event on the durable intake (Azure bills queues per
transaction), and the Table transactions the event's lease adds. Every HTTP request to a real
Azurite is counted: the queue's by a counting proxy in front of Azurite's Queue service, the
table's by an azure-core per-retry policy on the TableClient (a retried request is billed again).

Each event goes the way it goes in Azure: accepted onto the queue (the 202), received in a batch
as the Functions host does, checked by the intake worker (``shared.intake.worker.handle`` with
``shared.pipeline.process``), deleted. Goals: an event checked first time <= 3 queue transactions
(put, get, delete) and <= 3 table transactions for its lease (claim, read, release); a re-check of
a still-running run adds <= 3 queue transactions.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time
from collections import Counter

from azure.core.pipeline.policies import SansIOHTTPPolicy

from bench.common import header, mlflow_server, table, verdict

QUEUE_GOAL = 3
LEASE_GOAL = 3


class CountingPolicy(SansIOHTTPPolicy):
    """Counts the requests of the TableClient it is given to, by HTTP method."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_request(self, request) -> None:
        with self._lock:
            self.counts[request.http_request.method] += 1

    def take(self) -> int:
        with self._lock:
            total, self.counts = sum(self.counts.values()), Counter()
        return total


class ProxyCount:
    """The requests the counting proxy forwarded since the last take."""

    def __init__(self, proxy):
        self.proxy = proxy

    def take(self) -> int:
        total = self.proxy.count()
        self.proxy.reset()
        return total


def main() -> int:
    header("Storage queue transactions per event (durable intake)")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("evidence_gate").setLevel(logging.ERROR)
    from azure.data.tables import TableClient
    from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy

    from shared import pipeline
    from shared.engine import Engine
    from shared.intake.decide import RetryPolicy
    from shared.intake.queue import IntakeQueue
    from shared.intake.worker import handle
    from shared.policy import load_policy
    from shared.services import Services
    from shared.sources import REGISTRATION, RegistryEvent
    from shared.state.table import TableStateStore
    from tests.support.azurite import ACCOUNT, Azurite, available
    from tests.support.kit import RegistryKit
    from tests.support.proxy import CountingProxy

    missing = available()
    if missing:
        print(f"  cannot run: {missing}")
        return 1
    rows = []
    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        azurite = Azurite(tmp).start()
        proxy = CountingProxy(f"http://127.0.0.1:{azurite.ports['queue']}").start()
        try:
            queue_counter, table_counter = ProxyCount(proxy), CountingPolicy()
            connection = azurite.connection_string.replace(azurite.endpoint("queue"), f"{proxy.uri}/{ACCOUNT}")
            name = f"bench-{secrets.token_hex(4)}"
            clients = [QueueClient.from_connection_string(
                connection, q, message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=BinaryBase64DecodePolicy()) for q in (name, f"{name}-poison")]
            queue = IntakeQueue(*clients, create=True)
            store = TableStateStore(TableClient.from_connection_string(
                azurite.connection_string, f"bench{secrets.token_hex(4)}", per_retry_policies=[table_counter]))
            services = Services(engine=Engine(load_policy(None, None), store))
            policy = RetryPolicy(not_ready_seconds=1)
            kit = RegistryKit(server.uri)

            def event(version: str) -> RegistryEvent:
                return RegistryEvent(source="mlflow", event_type="model_version.created", action=REGISTRATION,
                                     registry=server.uri, model=model, version=version,
                                     event_id=secrets.token_hex(8))

            def host_pass(leases) -> list:
                """One pass of the host: receive a batch, invoke, delete on a normal return."""
                decisions = []
                for message in queue.receive(16, 30):
                    decisions.append(handle(message.content, queue=queue, check=lambda ev: pipeline.process(ev, services),
                                            leases=leases, policy=policy))
                    queue.delete(message)
                return decisions

            model = "bench-intake"
            ready = kit.model_version(model)
            queue_counter.take(), table_counter.take()  # the queues' and table's creation: once
            queue.accept(event(ready.version))
            (decision,) = host_pass(lambda: None)  # the check alone: its own state-store transactions
            check_only = table_counter.take()
            queue_counter.take()
            queue.accept(event(ready.version))
            (decision,) = host_pass(lambda: store)
            queued, leased = queue_counter.take(), table_counter.take() - check_only
            assert decision.action == "done", decision
            rows.append(("event checked first time: queue transactions", queued, f"<= {QUEUE_GOAL}",
                         verdict(queued <= QUEUE_GOAL)))
            rows.append(("its lease: table transactions (next to the check's own)", leased, f"<= {LEASE_GOAL}",
                         verdict(leased <= LEASE_GOAL)))
            print(f"  first time: {queued} queue, {leased} lease table transactions (check alone: {check_only})")

            running = kit.model_version(model, run_status="RUNNING")
            queue.accept(event(running.version))
            (first,) = host_pass(lambda: store)
            not_ready = queue_counter.take()  # put + get + re-enqueue + delete
            assert first.action == "retry", first
            kit.client.set_terminated(running.run_id, "FINISHED")
            time.sleep(first.delay_seconds + 0.5)
            queue_counter.take()
            (second,) = host_pass(lambda: store)
            recheck = queue_counter.take()
            assert second.action == "done", second
            extra = not_ready - queued + recheck
            rows.append(("a re-check of a still-running run: extra queue transactions", extra, f"<= {QUEUE_GOAL}",
                         verdict(extra <= QUEUE_GOAL)))
            print(f"  still running: {not_ready} queue transactions for the not-ready attempt, {recheck} for the"
                  f" re-check")
        finally:
            proxy.stop()
            azurite.stop()
    print(table("Storage queue transactions per event (counted at the client, Azurite)", rows))
    return 0  # figures, not a gate: the table says whether each goal was met


if __name__ == "__main__":
    raise SystemExit(main())
