"""Benchmark 6: registrations checked per second by one instance (issue 15, goal 5).

One ``evidence-gate serve`` process (shared/serve.py, its default 8 waitress threads, timers off)
receives signed MLflow ``model_version.created`` deliveries for versions that have no report yet,
against a local MLflow server; each answer is 200 once the report is stored. First one delivery at
a time (the sequential figure), then C deliveries in flight at once for each C in --concurrency:
registrations per second and the p95 answer time at each level.

What it decides: the Flex Consumption per-instance HTTP concurrency (infra/app/api.bicep,
``scaleAndConcurrency.triggers.http.perInstanceConcurrency``). A check mostly waits on the
registry, so one instance overlaps checks until its CPU is used up: the serve process's CPU time
per registration (``/proc/<pid>/stat``) gives the most registrations per second an instance of
each Flex size (0.25, 1 or 2 vCPU) can do, and by Little's law the requests in flight it takes to
get there at the sequential answer time. More in flight per instance only queue (longer answers,
same rate); Flex adds instances instead. The level where this machine's rate levels off (within
90 % of the best) is printed too. Goal: concurrent throughput at least 2x the
sequential figure (the check mostly waits on the registry, so one instance can overlap checks)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench.common import REPO, Factory, header, mlflow_server, percentile, table, verdict

SECRET = "bench-throughput-secret"
GOAL_SPEEDUP = 2.0
KNEE = 0.9  # where the rate levels off: the smallest level reaching this share of the best rate
# vCPU per Flex Consumption instance size ("Instance memory", learn.microsoft.com/azure/azure-functions/flex-consumption-plan)
FLEX_CORES = {512: 0.25, 2048: 1.0, 4096: 2.0}


class Serve:
    """``evidence-gate serve`` in its own process, on a free port."""

    def __init__(self, tracking_uri: str, store: str):
        from demo.stack import free_port

        self.port = free_port()
        env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_WEBHOOK_SECRET=SECRET, EVIDENCE_GATE_STORE=store)
        for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL",
                     "APPLICATIONINSIGHTS_CONNECTION_STRING"):
            env.pop(name, None)
        binary = os.path.join(os.path.dirname(sys.executable), "evidence-gate")
        self.proc = subprocess.Popen([binary, "serve", "--port", str(self.port), "--no-timer"], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"evidence-gate serve did not start: {line!r}")
        self.url = f"http://127.0.0.1:{self.port}/api/webhooks/mlflow"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the serve process so far (/proc/<pid>/stat, fields 14 and 15)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def deliver(url: str, model: str, version: str) -> float:
    """One signed delivery; the seconds until its 200 (report stored)."""
    from shared.sources.signatures import mlflow_signature

    body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"name": model, "version": version}}).encode()
    delivery, ts = str(uuid.uuid4()), str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
               "X-MLflow-Signature": mlflow_signature(SECRET, delivery, ts, body)}
    t = time.perf_counter()
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=120) as resp:
        answer = json.loads(resp.read())
        assert resp.status == 200 and answer["stored"] == 1, answer
    return time.perf_counter() - t


def run_level(url: str, versions: list[tuple[str, str]], concurrency: int) -> tuple[float, list[float]]:
    """(registrations per second, answer times) with ``concurrency`` deliveries in flight."""
    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        times = list(pool.map(lambda mv: deliver(url, *mv), versions))
    return len(versions) / (time.perf_counter() - t), times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-level", type=int, default=200, help="deliveries at each level")
    parser.add_argument("--concurrency", default="2,4,8,16", help="levels of deliveries in flight")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    header("registrations checked per second by one evidence-gate serve")
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        factory = Factory(server.uri)
        needed = args.warmup + args.per_level * (1 + len(levels))
        models = [f"bench-throughput-{i}" for i in range(8)]
        t = time.perf_counter()
        versions = factory.many(models, -(-needed // len(models)))
        print(f"  {len(versions)} versions registered in {time.perf_counter() - t:.1f} s", flush=True)
        # interleave the models, as deliveries from many teams would be
        versions = sorted(versions, key=lambda mv: (int(mv[1]), mv[0]))
        serve = Serve(server.uri, os.path.join(tmp, "reports.sqlite"))
        try:
            cursor = args.warmup
            run_level(serve.url, versions[:cursor], 1)
            results = []
            for level in [1, *levels]:
                batch = versions[cursor:cursor + args.per_level]
                cursor += args.per_level
                cpu = serve.cpu_seconds()
                rate, times = run_level(serve.url, batch, level)
                results.append((level, rate, times, (serve.cpu_seconds() - cpu) / len(batch)))
                print(f"  {level} in flight: {rate:.1f} registrations/s, p95 {percentile(times, 95) * 1000:.0f} ms",
                      flush=True)
        finally:
            serve.stop()

    sequential = results[0][1]
    best = max(rate for _, rate, _, _ in results)
    setting = next(level for level, rate, _, _ in results if rate >= KNEE * best)
    cpu = max(c for _, _, _, c in results)  # CPU seconds per registration in the serve process
    rows = []
    for level, rate, times, cpu_each in results:
        label = "one at a time (sequential)" if level == 1 else f"{level} deliveries in flight"
        goal = f">= {GOAL_SPEEDUP:g}x sequential" if level > 1 else None
        rows.append((label, f"{rate:.1f}/s", f"{rate / sequential:.2f}x", f"{percentile(times, 50) * 1000:.0f} ms",
                     f"{percentile(times, 95) * 1000:.0f} ms", f"{cpu_each * 1000:.0f} ms", goal,
                     verdict(rate >= GOAL_SPEEDUP * sequential) if goal else ""))
    print(table(f"One evidence-gate serve (8 threads), {args.per_level} signed registrations per level", rows,
                headers=("deliveries", "registrations", "vs sequential", "p50", "p95", "CPU per registration", "goal",
                         "met")))
    seq_p50 = percentile(results[0][2], 50)
    for memory, cores in FLEX_CORES.items():
        cap = cores / cpu
        print(f"  Flex {memory} MB instance ({cores:g} vCPU): at most {cap:.1f} registrations/s by CPU;"
              f" in flight to reach it at the sequential p50 ({seq_p50 * 1000:.0f} ms): {cap * seq_p50:.1f}")
    print(f"  this machine: the rate levels off at {setting} in flight (smallest level within {KNEE:.0%} of the best,"
          f" {best:.1f}/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
