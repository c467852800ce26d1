"""Benchmark: Table Storage transactions per check on the shared state store (Azure bills Table
Storage per transaction). Every HTTP request the azure-data-tables client sends to a real Azurite
is counted by an azure-core per-retry policy (a retried request is billed again), per kind.

The checks go through the pipeline (``shared.pipeline.process``), as a webhook delivery does:
the redelivery lookup, the check's history reads and the save with its indexes.
Goals: registration <= 5 (the redelivery lookup, the report and its indexes), promotion <= 10 (one
read per history question: previous holder, passing registration, newer passed versions, holder
change; the writes of a registration plus a holder change), redelivery <= 3, and a reconcile sweep
over N already-reported versions <= N + 4 (one query per version; watermark, holders).
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
from collections import Counter

from azure.core.pipeline.policies import SansIOHTTPPolicy

from bench.common import Factory, header, mlflow_server, table, verdict

GOALS = {"registration": 5, "promotion": 10, "redelivery": 3}
SWEEP_OVERHEAD = 4


class CountingPolicy(SansIOHTTPPolicy):
    """Counts the requests of one TableClient by ``METHOD kind`` (query, point read, write)."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_request(self, request) -> None:
        http = request.http_request
        method = http.method
        path = http.url.split("?")[0]
        if method == "GET":
            kind = "point read" if "PartitionKey=" in path else "query"
        elif method == "POST" and path.rstrip("/").endswith("/Tables"):
            kind = "create table"
        else:
            kind = "write"
        with self._lock:
            self.counts[f"{method} {kind}"] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def main() -> int:
    header("Table Storage transactions per check (shared state store)")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from azure.data.tables import TableClient

    from shared import pipeline
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.reconcile import reconcile_registry
    from shared.services import Services
    from shared.sources import PROMOTION, REGISTRATION, RegistryEvent
    from shared.state.table import TableStateStore
    from tests.support.azurite import Azurite, available
    from tests.support.kit import RegistryKit

    missing = available()
    if missing:
        print(f"  cannot run: {missing}")
        return 1
    rows = []
    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        azurite = Azurite(tmp).start()
        try:
            counter = CountingPolicy()
            client = TableClient.from_connection_string(azurite.connection_string, f"bench{secrets.token_hex(4)}",
                                                        per_retry_policies=[counter])
            store = TableStateStore(client)
            counter.take()  # the table's creation: once per process, not per check
            services = Services(engine=Engine(load_policy(None, None), store))
            kit = RegistryKit(server.uri)
            model = "bench-state"
            v1 = kit.model_version(model, version_tags={"owner": "team-churn", "approved_by": "rita"})
            v2 = kit.model_version(model, version_tags={"owner": "team-churn", "approved_by": "rita"})
            kit.client.set_registered_model_alias(model, "champion", v1.version)

            def event(action, version, alias=None):
                return RegistryEvent(source="mlflow", event_type=action, action=action, registry=server.uri,
                                     model=model, version=version, alias=alias, event_id=secrets.token_hex(8))

            promote_v2 = event(PROMOTION, v2.version, "champion")
            cases = [
                ("registration", "v1, passing", event(REGISTRATION, v1.version), None),
                ("registration", "v2, passing", event(REGISTRATION, v2.version), None),
                ("promotion", "v1 -> champion (first holder)", event(PROMOTION, v1.version, "champion"), None),
                ("promotion", "v2 -> champion (v1 held it)", promote_v2,
                 lambda: kit.client.set_registered_model_alias(model, "champion", v2.version)),
                ("redelivery", "v2 -> champion again (answered from the store)", promote_v2, None),
            ]
            for kind, label, ev, before in cases:
                if before:
                    before()
                counter.take()
                outcome = pipeline.process(ev, services)
                counts = counter.take()
                assert outcome.status == "checked", outcome.body()
                total = sum(counts.values())
                rows.append((f"{kind}: {label}", total, f"<= {GOALS[kind]}", verdict(total <= GOALS[kind])))
                print(f"  {kind:<12} {label:<50} {total} transactions: {dict(sorted(counts.items()))}")

            Factory(server.uri).many(["bench-state-sweep"], 20)
            reconcile_registry(server.uri, services, rate=0, workers=4)  # checks the 20 new versions
            counter.take()
            summary = reconcile_registry(server.uri, services, rate=0, workers=1)  # all already reported
            counts = counter.take()
            total, goal = sum(counts.values()), summary.listed + SWEEP_OVERHEAD
            rows.append((f"reconcile: sweep over {summary.listed} versions already reported", total, f"<= {goal}",
                         verdict(total <= goal)))
            print(f"  reconcile    sweep, {summary.listed} versions listed, {summary.already} already reported:"
                  f" {dict(sorted(counts.items()))}")
        finally:
            azurite.stop()
    print(table("Table Storage transactions per check (counted at the client, Azurite)", rows))
    return 0  # figures, not a gate: the table says whether each goal was met


if __name__ == "__main__":
    raise SystemExit(main())
