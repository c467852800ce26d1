"""Benchmark 3: reconcile of N (default 1,000) model versions vs a naive sequential loop over the
MLflow client doing the same fetches, against the same server in the same run.

Versions: 10 registered models x 100 versions, all registered from one LoggedModel (see
bench/common.py), so each check makes the same 6 registry requests as a normal MLflow 3 version.
Every configuration goes through the counting proxy; a sampler thread records the proxy's counts
by API class every 100 ms, giving the peak request rate of each class over any 1 s window.
Databricks limits each workspace by class: Model Registry about 40 requests/s, MLflow tracking
about 120/s, run and experiment search about 7/s. Each reconcile run uses a fresh store
(everything is checked).

Configurations: the naive loop (baseline); reconcile with the defaults for this (open-source)
server: 8 workers, token bucket 100 requests/s, the listed version records reused (5 requests per
version); reconcile with the Databricks defaults: 8 workers, per class registry 30, tracking 100 and search
5 requests/s, every version fetched again (6 requests per version: Databricks listings are not
reused, see shared/reconcile.py); with --previous also the previous Databricks default (one
bucket of 30 requests/s for every request). Goal: reconcile at least 5x faster than the naive
loop without exceeding any of Databricks' per-class limits."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time

from bench.common import Factory, counting_proxy, header, mlflow_server, table, verdict

GOAL_SPEEDUP = 5.0
DATABRICKS_LIMITS = {"registry": 40.0, "tracking": 120.0, "search": 7.0}  # requests/s per workspace


class RateSampler:
    """Samples the proxy's request counts by API class every ``interval`` seconds."""

    def __init__(self, proxy, interval: float = 0.1):
        self.proxy, self.interval = proxy, interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.proxy.count_by_class()))
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self.proxy.count_by_class()))

    def peak(self, api: str | None = None, window: float = 1.0) -> float:
        """The highest rate over any ~1 s window, of one API class or of all requests."""
        def count(sample):
            return sample[api] if api else sum(sample.values())

        best, j = 0.0, 0
        for i in range(len(self.samples)):
            while self.samples[i][0] - self.samples[j][0] > window:
                j += 1
            span = self.samples[i][0] - self.samples[j][0]
            if span >= window * 0.9:
                best = max(best, (count(self.samples[i][1]) - count(self.samples[j][1])) / span)
        return best

    def peaks(self) -> dict[str, float]:
        return {api: self.peak(api) for api in DATABRICKS_LIMITS}


def naive_loop(uri: str, versions: list[tuple[str, str]]) -> int:
    """What a script would do: for each version, sequentially, the same 6 fetches as the check."""
    from mlflow import MlflowClient
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    fetched = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, version in versions:
            mv = client.get_model_version(name, version)
            run = client.get_run(mv.run_id)
            lm = client.get_logged_model(mv.source.split("/")[1])
            model_repo = get_artifact_repository(lm.artifact_location, tracking_uri=uri)
            files = [os.path.basename(f.path) for f in model_repo.list_artifacts()]
            if "MLmodel" in files:
                model_repo._download_file("MLmodel", os.path.join(tmp, "MLmodel"))
            get_artifact_repository(run.info.artifact_uri, tracking_uri=uri).list_artifacts()
            fetched += 1
    return fetched


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--per-model", type=int, default=100)
    parser.add_argument("--previous", action="store_true",
                        help="also run the previous Databricks default (one 30 req/s bucket for every request)")
    args = parser.parse_args(argv)
    total = args.models * args.per_model
    header(f"reconcile of {total} model versions")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("evidence_gate").setLevel(logging.WARNING)
    os.environ.pop("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", None)
    os.environ.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)

    from shared import reconcile
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.reconcile import DEFAULT_WORKERS, RateLimiter, reconcile_registry
    from shared.services import Services
    from shared.sinks.store import ReportStore

    results = []
    with mlflow_server() as server, counting_proxy(server.uri) as proxy, tempfile.TemporaryDirectory() as tmp:
        factory = Factory(server.uri)
        t = time.perf_counter()
        versions = factory.many([f"bench-sweep-{i:02d}" for i in range(args.models)], args.per_model)
        print(f"  {len(versions)} versions registered in {time.perf_counter() - t:.1f} s", flush=True)

        proxy.reset()
        with RateSampler(proxy) as sampler:
            t = time.perf_counter()
            naive_loop(proxy.uri, versions)
            elapsed = time.perf_counter() - t
        results.append(("naive sequential loop (MlflowClient)", elapsed, proxy.count(), sampler.peaks(), total))
        print(f"  naive loop: {elapsed:.1f} s, {proxy.count()} requests", flush=True)

        configs = [("reconcile, defaults for this server (8 workers, 100 req/s, listing reused)",
                    DEFAULT_WORKERS, None, None),
                   ("reconcile, Databricks defaults (8 workers, registry 30 / tracking 100 / search 5 req/s, no reuse)",
                    DEFAULT_WORKERS, RateLimiter.per_class(reconcile.DATABRICKS_RATES), False)]
        if args.previous:
            configs.append(("reconcile, previous Databricks default (8 workers, 30 req/s for all, no reuse)",
                            DEFAULT_WORKERS, 30.0, False))
        for i, (label, workers, rate, reuse) in enumerate(configs):
            services = Services(engine=Engine(load_policy(), ReportStore(os.path.join(tmp, f"store-{i}.sqlite"))))
            proxy.reset()
            with RateSampler(proxy) as sampler:
                t = time.perf_counter()
                summary = reconcile_registry(proxy.uri, services, workers=workers, rate=rate, reuse_listing=reuse)
                elapsed = time.perf_counter() - t
            assert summary.complete and summary.checked == total, summary.line()
            results.append((label, elapsed, proxy.count(), sampler.peaks(), summary.checked))
            print(f"  {label}: {elapsed:.1f} s, {proxy.count()} requests, {summary.line()}", flush=True)

    baseline = results[0][1]
    rows = []
    for label, elapsed, requests, peaks, checked in results:
        speedup = baseline / elapsed
        under = all(peaks[api] <= limit for api, limit in DATABRICKS_LIMITS.items())
        is_reconcile = label.startswith("reconcile")
        rows.append((label, f"{elapsed:.1f} s", f"{checked / elapsed:.1f}/s", requests,
                     " / ".join(f"{peaks[api]:.0f}" for api in DATABRICKS_LIMITS), f"{speedup:.2f}x",
                     verdict(speedup >= GOAL_SPEEDUP and under) if is_reconcile else "baseline"))
    limits = " / ".join(f"{limit:g}" for limit in DATABRICKS_LIMITS.values())
    print(table(f"Reconcile of {total} versions vs naive loop (same server, same run); goal >= {GOAL_SPEEDUP:g}x with peak"
                f" rates (registry / tracking / search) <= Databricks' {limits} req/s",
                rows, headers=("configuration", "time", "versions", "requests", "peak req/s (reg / track / search)",
                               "vs naive", "goal met")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
