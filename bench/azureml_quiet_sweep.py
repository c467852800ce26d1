"""Benchmark: what a reconcile sweep costs on Azure ML, counted at the local Azure ML
(tests/platforms/azureml/local_azureml.py in front of a real MLflow server).

Azure ML offers no documented change signal to list only what changed (the version listing's
``$orderBy`` documents no values; a stage change modifies the version, not its model container),
so every sweep lists the model containers and then each model's versions. Measured on a fresh
workspace of ``--models`` models with ``--per-model`` versions each: the first sweep (every
version checked), the quiet sweep (nothing changed since the watermark, which is past the
5-minute overlap as it is five minutes after a sweep) and the daily pass that looks at every
model's stage holders again. Goal of the quiet sweep: nothing per version, at most one version
listing per model plus the two container listings (one page per 100 models each)."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

from bench.common import Factory, header, mlflow_server, table, verdict


def main(argv=None) -> int:
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.reconcile import ALIAS_PASS_MS, OVERLAP_MS, reconcile_registry
    from shared.services import Services
    from shared.sinks.store import ReportStore
    from tests.platforms.azureml.local_azureml import CLOUD, LocalAzureML, certificates

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--per-model", type=int, default=3)
    args = parser.parse_args(argv)
    header("Azure ML reconcile sweep")
    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        ca, chain, key = certificates(tmp)
        aml = LocalAzureML(chain, key).start()
        try:
            ws = aml.add_workspace("ws-sweep", server.uri)
            os.environ.update(aml.environment(), AZUREML_CURRENT_CLOUD=CLOUD, REQUESTS_CA_BUNDLE=ca, SSL_CERT_FILE=ca)
            factory = Factory(server.uri)
            factory.many([f"bench-aml-{i:03d}" for i in range(args.models)], args.per_model)
            services = Services(engine=Engine(load_policy(), ReportStore(os.path.join(tmp, "store.sqlite"))))
            aml.reset()
            started = time.monotonic()
            first = reconcile_registry(ws.tracking_uri, services)
            first_seconds, first_requests = time.monotonic() - started, sum(aml.kinds().values())
            assert first.checked == args.models * args.per_model and not first.unavailable, first.line()

            services.store.set_watermark(first.registry, first.watermark_after + OVERLAP_MS + 1)  # five minutes later
            aml.reset()
            quiet = reconcile_registry(ws.tracking_uri, services)
            quiet_kinds = aml.kinds()
            assert (quiet.listed, quiet.checked, quiet.promotions) == (0, 0, 0), quiet.line()

            aml.reset()  # a day later: every model's stage holders are looked at again
            daily = reconcile_registry(ws.tracking_uri, services, now=lambda: time.time() + ALIAS_PASS_MS / 1000 + 60)
            daily_kinds = aml.kinds()
            assert (daily.checked, daily.promotions) == (0, 0), daily.line()
        finally:
            aml.stop()

    pages = math.ceil(args.models / 100)
    bound = args.models + 2 * pages
    quiet_requests = sum(quiet_kinds.values())
    per_version = sum(n for k, n in quiet_kinds.items() if k not in ("arm models", "arm model versions"))
    rows = [
        (f"first sweep: {args.models * args.per_model} versions checked", f"{first_requests} requests, {first_seconds:.1f} s",
         None, None),
        ("quiet sweep: requests (containers listings + version listings)",
         f"{quiet_requests} ({quiet_kinds['arm models']} + {quiet_kinds['arm model versions']})",
         f"<= {bound} (models + 2 per 100 models)", verdict(quiet_requests <= bound)),
        ("quiet sweep: requests per version", str(per_version), "0", verdict(per_version == 0)),
        ("daily pass (every model's stage holders): requests", str(sum(daily_kinds.values())), None, None),
    ]
    print(table(f"Azure ML sweeps ({args.models} models x {args.per_model} versions)", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
