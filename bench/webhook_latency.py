"""Benchmark 2: webhook -> stored report latency, warm, over 100 registrations.

A real MLflow server delivers its real ``model_version.created`` webhooks to ``evidence-gate serve``'s
host (:class:`shared.serve.LocalHost`, waitress, in this process) whose store is polled every 2 ms:
the latency runs from the moment the registration request returns to the moment the report is in
the store (it includes MLflow's own webhook dispatch). A second table times the function alone:
signed deliveries POSTed straight to the host, answered 200 once the report is stored.
Goal: p95 <= 0.5 s. For comparison, Databricks model update triggers poll about once a minute."""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import urllib.request
import uuid

from bench.common import Factory, header, mlflow_server, percentile, table, verdict

SECRET = "bench-webhook-secret"
GOAL_P95 = 0.5


def wait_report(store, model: str, version: str, timeout: float = 30.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if store.query(model=model, version=version, limit=1):
            return time.perf_counter()
        time.sleep(0.002)
    raise TimeoutError(f"no report for {model} v{version} within {timeout} s")


def post(url: str, body: bytes, headers: dict) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
        return resp.status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    header("webhook -> stored report latency")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("waitress").setLevel(logging.ERROR)

    with mlflow_server(webhook_cache_ttl=1) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(MLFLOW_TRACKING_URI=server.uri, MLFLOW_WEBHOOK_SECRET=SECRET,
                          EVIDENCE_GATE_STORE=os.path.join(tmp, "reports.sqlite"))
        for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL",
                     "APPLICATIONINSIGHTS_CONNECTION_STRING"):
            os.environ.pop(name, None)
        from shared.serve import LocalHost
        from shared.sinks.store import ReportStore
        from shared.sources.signatures import mlflow_signature

        host = LocalHost(port=0, background=False)  # function_app's services, from the settings above
        host.serve_in_thread()
        url = f"{host.base_url}/api/webhooks/mlflow"
        factory = Factory(server.uri)
        factory.client.create_webhook(name="evidence-gate", url=url, events=["model_version.created"], secret=SECRET)
        time.sleep(1.5)  # the server's webhook list cache (TTL 1 s here)
        store = ReportStore(os.environ["EVIDENCE_GATE_STORE"])
        import requests

        session = requests.Session()
        model = "bench-latency"
        factory.ensure_model(model)
        end_to_end = []
        for i in range(args.warmup + args.events):
            t0 = time.perf_counter()
            version = factory.version(model, session=session)
            t_registered = time.perf_counter()
            t1 = wait_report(store, model, version)
            if i >= args.warmup:
                end_to_end.append((t1 - t_registered, t1 - t0))
        delivered = [e[0] for e in end_to_end]
        with_registration = [e[1] for e in end_to_end]

        # The function alone: signed deliveries of versions that have no report yet.
        factory.client.delete_webhook(factory.client.list_webhooks()[0].webhook_id)
        time.sleep(1.5)
        direct_model = "bench-direct"
        factory.ensure_model(direct_model)
        versions = [factory.version(direct_model, session=session) for _ in range(args.warmup + args.events)]
        direct = []
        for i, version in enumerate(versions):
            body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00Z",
                               "data": {"name": direct_model, "version": version, "run_id": factory.run_id}}).encode()
            delivery, ts = str(uuid.uuid4()), str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
                       "X-MLflow-Signature": mlflow_signature(SECRET, delivery, ts, body)}
            t0 = time.perf_counter()
            assert post(url, body, headers) == 200
            if i >= args.warmup:
                direct.append(time.perf_counter() - t0)
        host.close()

    def ms(v: float) -> str:
        return f"{v * 1000:.0f} ms"

    p95 = percentile(delivered, 95)
    rows = [
        ("MLflow webhook -> report stored, p50", ms(percentile(delivered, 50)), None, None),
        ("MLflow webhook -> report stored, p95", ms(p95), f"<= {GOAL_P95 * 1000:.0f} ms", verdict(p95 <= GOAL_P95)),
        ("MLflow webhook -> report stored, max", ms(max(delivered)), None, None),
        ("registration request start -> report stored, p50", ms(percentile(with_registration, 50)), None, None),
        ("registration request start -> report stored, p95", ms(percentile(with_registration, 95)), None, None),
        ("signed POST to the function -> 200 (report stored), p50", ms(percentile(direct, 50)), None, None),
        ("signed POST to the function -> 200 (report stored), p95", ms(percentile(direct, 95)), None, None),
        ("Databricks model update trigger (polling), for comparison", "~60 s", None, None),
    ]
    print(table(f"Webhook -> stored report, {args.events} registrations each, warm ({args.warmup} warm-up)", rows))
    return 0  # figures, not a gate: the table says whether the goal was met


if __name__ == "__main__":
    raise SystemExit(main())
