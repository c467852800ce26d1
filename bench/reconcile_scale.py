"""Benchmark 7: the busy sweep at registry scale (issue 15, goal 2).

Sweeps of 1,000 and then 10,000 new model versions (--sizes; registered models of --per-model
versions, each registered model with its own run and LoggedModel, see bench/common.py), each
sweep a fresh ``reconcile_registry`` process with a fresh store (everything is checked) and the
defaults for this open-source server (8 workers, one bucket of 100 requests/s, listing reused),
through the counting proxy. For each: the sweep's time against the floor the rate limits set
(requests counted at the proxy / allowed rate, per bucket; goal within 1.1x), and the sweep
process's RSS before the sweep and at its peak (``VmHWM``; goal: flat, the peak at the
largest size at most 1.2x the peak at the smallest), and the machine's 1-minute load average
before and after (the time depends on it; the memory and the request counts do not).

Building the registry: the first size through the MLflow REST API (``model-versions/create`` from
8 threads, as bench/common.py does), the rest with MLflow's own store API
(``SqlAlchemyStore.create_model_version`` plus the LoggedModel's version tag, exactly what the
server's handler does) on the server's SQLite file while the server is stopped. Both rates are
printed: the store is the quick way to a large registry.

Then the quiet sweep (goal 1): the same registry, nothing changed since the last sweep's watermark
(the store's watermark moved past the 5-minute overlap, as it is 5 minutes after a sweep), swept
again with the same store: the requests counted at the proxy, goal at most 5 whatever the size.
Goal 1 names 2,000 registered models and 10,000 versions: ``--per-model 5``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

from bench.common import REPO, RSS_HELPERS, Factory, counting_proxy, header, mlflow_server, table, verdict

GOAL_FLOOR_RATIO = 1.1
GOAL_FLAT = 1.2
GOAL_QUIET_REQUESTS = 5

SEED = r"""
import json, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

@event.listens_for(Engine, "connect")
def no_fsync(connection, record):  # a scratch database: no durability needed, 3 commits per version
    connection.execute("PRAGMA synchronous=OFF")

db = sys.argv[1]
with open(sys.argv[2]) as f:  # the plan is a file: thousands of models do not fit in an argument list
    plan = json.load(f)
registry, tracking = RegistryStore(db), TrackingStore(db, "mlflow-artifacts:/")
t = time.perf_counter()
made = 0
for name, run_id, model_id, count in plan:
    for _ in range(count):
        # mlflow/server/handlers.py _create_model_version: the registry store, then the tag
        mv = registry.create_model_version(name, f"models:/{model_id}", run_id,
                                           tags=[ModelVersionTag("owner", "team-churn")], model_id=model_id)
        tracking.set_model_versions_tags(name=name, version=mv.version, model_id=model_id)
        made += 1
print(json.dumps({"made": made, "seconds": time.perf_counter() - t}))
"""

SWEEP = r"""
import json, os, sys, time
""" + RSS_HELPERS + r"""

from shared import reconcile
from shared.services import Services
from shared.sinks.store import ReportStore  # imported before the baseline, like the sweep's own modules
before = rss_mb()
t = time.perf_counter()
if len(sys.argv) > 2:  # the quiet sweep: nothing changed since the store's watermark (past the overlap)
    from shared.evidence.registry import display_uri
    store, shown = ReportStore(), display_uri(sys.argv[1])
    store.set_watermark(shown, store.watermark(shown) + reconcile.OVERLAP_MS + 1)
summary = reconcile.reconcile_registry(sys.argv[1], Services.from_settings())
elapsed = time.perf_counter() - t
print(json.dumps({"elapsed": elapsed, "checked": summary.checked, "listed": summary.listed,
                  "complete": summary.complete, "line": summary.line(), "before": before,
                  "end": rss_mb(), "peak": peak_mb(),
                  "rates": summary.rate_limits}))
"""


def seed_store(db: str, plan: list[tuple[str, str, str, int]]) -> dict:
    """Versions written with MLflow's store API (the server must be stopped: one SQLite writer)."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{db}")  # the store resolves models:/ through it
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
    try:
        out = subprocess.run([sys.executable, "-c", SEED, f"sqlite:///{db}", f.name], cwd=REPO, env=env,
                             check=True, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep(uri: str, store: str, *, quiet: bool = False) -> dict:
    env = dict(os.environ, EVIDENCE_GATE_STORE=store)
    for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL",
                 "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", SWEEP, uri, *(["quiet"] if quiet else [])], cwd=REPO, env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor_seconds(uri: str, by_class: dict[str, int]) -> float:
    """The least time the sweep's rate limits allow for these requests: per bucket, the requests
    of the API classes sharing it / its rate; the slowest bucket sets the floor."""
    from shared.reconcile import default_limiter

    buckets: dict[int, tuple[float, int]] = {}
    for api, bucket in default_limiter(uri).buckets.items():
        rate, count = buckets.get(id(bucket), (bucket.rate, 0))
        buckets[id(bucket)] = (rate, count + by_class.get(api, 0))
    return max(count / rate for rate, count in buckets.values() if rate > 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000", help="versions in the registry at each sweep, ascending")
    parser.add_argument("--per-model", type=int, default=100)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    header(f"reconcile sweeps of {', '.join(f'{s:,}' for s in sizes)} versions")
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    rows, built, results = [], [], []
    with mlflow_server() as server, counting_proxy(server.uri) as proxy, tempfile.TemporaryDirectory() as tmp:
        factory = Factory(server.uri)
        have = 0
        for i, size in enumerate(sizes):
            names = [f"bench-scale-{m:04d}" for m in range(have // args.per_model, size // args.per_model)]
            t = time.perf_counter()
            if i == 0:
                factory.many(names, args.per_model)
                built.append(("REST API, 8 threads", len(names) * args.per_model, time.perf_counter() - t, None))
            else:
                factory.prepare(names)  # registered models, runs and LoggedModels over REST
                prepared = time.perf_counter() - t
                server.stop()
                seeded = seed_store(os.path.join(server.root, "mlflow.db"),
                                    [(n, *factory.origins[n], args.per_model) for n in names])
                t_restart = time.perf_counter()
                server.start()
                built.append(("MLflow store API (server stopped)", seeded["made"], seeded["seconds"],
                              f"+ {prepared:.0f} s for {len(names)} models over REST,"
                              f" {time.perf_counter() - t_restart:.0f} s server restart"))
            have = size
            print(f"  {size} versions in the registry ({built[-1][0]}: {built[-1][1]} in {built[-1][2]:.1f} s)",
                  flush=True)
            proxy.reset()
            load_before = os.getloadavg()[0]
            result = sweep(proxy.uri, os.path.join(tmp, f"store-{size}.sqlite"))
            result["load"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
            assert result["complete"] and result["checked"] == size, result["line"]
            result.update(size=size, requests=proxy.count(), floor=floor_seconds(proxy.uri, proxy.count_by_class()))
            results.append(result)
            print(f"  sweep of {size}: {result['elapsed']:.1f} s, {result['requests']} requests,"
                  f" floor {result['floor']:.1f} s, peak RSS {result['peak']:.0f} MB", flush=True)
        # Goal 1: the same registry with nothing changed since the last sweep, same store.
        proxy.reset()
        quiet = sweep(proxy.uri, os.path.join(tmp, f"store-{sizes[-1]}.sqlite"), quiet=True)
        quiet.update(requests=proxy.count(), models=sizes[-1] // args.per_model)

    smallest = results[0]["peak"]
    for r in results:
        ratio = r["elapsed"] / r["floor"]
        flat = r["peak"] / smallest
        rows.append((f"{r['size']:,}", f"{r['elapsed']:.1f} s", r["requests"], f"{r['floor']:.1f} s",
                     f"{ratio:.2f}x", verdict(ratio <= GOAL_FLOOR_RATIO), f"{r['before']:.0f} MB", f"{r['peak']:.0f} MB",
                     f"{flat:.2f}x", verdict(flat <= GOAL_FLAT) if r is not results[0] else "baseline", r["load"]))
    print(table(f"Reconcile sweeps ({results[0]['rates']}, 8 workers, fresh store each); goals: time <= "
                f"{GOAL_FLOOR_RATIO:g}x the rate-limit floor, peak RSS <= {GOAL_FLAT:g}x the {results[0]['size']:,}-version"
                " sweep's", rows,
                headers=("versions", "sweep", "requests", "floor (requests / rate)", "vs floor", "met",
                         "RSS before", "peak RSS", "peak vs smallest", "flat", "load average (1 min)")))
    print(table(f"Quiet sweep (nothing changed since the watermark); goal: at most {GOAL_QUIET_REQUESTS} requests",
                [(f"{quiet['models']:,}", f"{sizes[-1]:,}", quiet["requests"], quiet["listed"],
                  verdict(quiet["requests"] <= GOAL_QUIET_REQUESTS))],
                headers=("registered models", "versions", "requests", "versions listed", "met")))
    print(table("Building the registry", [(how, f"{n:,}", f"{s:.1f} s", f"{n / s:.0f}/s", note or "")
                                          for how, n, s, note in built],
                headers=("how", "versions", "time", "rate", "")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
