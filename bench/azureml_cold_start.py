"""Benchmark: the first Azure ML event in a fresh process, on the local Azure ML
(tests/platforms/azureml/local_azureml.py: azure-identity's managed identity, azure-ai-ml and the
workspace's MLflow endpoint over TLS on loopback, in front of a real MLflow server).

A fresh interpreter imports function_app and calls ``azureml_events`` with a ModelRegistered
Event Grid event for the workspace; measured from process start (the parent's clock, just before
it starts the child) to the stored report (the child's clock once the function returned; the
Functions worker stays up after an event, so its exit is not part of the first event; the time to
the child's exit is shown beside it), next to ``import mlflow`` and ``import azure.ai.ml`` alone, with the requests the local
Azure ML received for it and the peak memory (``VmHWM``) of that function process. Each figure is
the median of several fresh processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.common import (
    REPO,
    RSS_HELPERS,
    Factory,
    first_event_rows,
    header,
    median,
    mlflow_imported_row,
    mlflow_server,
    table,
)

IMPORT_SNIPPET = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
FIRST_EVENT = r"""
import json, os, sys, time
t0 = time.perf_counter()
""" + RSS_HELPERS + r"""
import function_app
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
t_import = time.perf_counter()
fn = {f.get_function_name(): f for f in function_app.functions()}["azureml_events"]
(binding,) = [b for b in json.loads(fn.get_function_json())["bindings"] if b["direction"] == "IN"]
topic, name, version = sys.argv[1:4]
event = {"id": f"bench-{name}-{version}", "topic": topic, "subject": f"models/{name}:{version}",
         "eventType": "Microsoft.MachineLearningServices.ModelRegistered", "eventTime": "2026-01-01T00:00:00Z",
         "data": {"modelName": name, "modelVersion": version}, "dataVersion": "1", "metadataVersion": "1"}
decoded = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
fn.get_user_function()(**{binding["name"]: decoded})
print(json.dumps({"import": t_import - t0, "handled": time.perf_counter() - t0, "stored_at": time.time(),
                  "stored": function_app.services().store.count(),
                  "mlflow_imported": "mlflow" in sys.modules, "peak_mb": peak_mb()}))
"""


def fresh(code: str, *args: str, env: dict) -> tuple[float, float, str]:
    """(epoch seconds at the start, seconds to the child's exit, the child's last output line)."""
    started, start = time.time(), time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True).stdout
    return started, time.perf_counter() - start, out.strip().splitlines()[-1] if out.strip() else ""


def main(argv=None) -> int:
    from tests.platforms.azureml.local_azureml import CLOUD, LocalAzureML, certificates

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    header("Azure ML cold start")
    env = {k: v for k, v in os.environ.items() if k not in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "MLFLOW_TRACKING_URI")}
    imports = {}
    for module in ("mlflow", "azure.ai.ml"):
        fresh(IMPORT_SNIPPET.format(module=module), env=env)
        imports[module] = median([float(fresh(IMPORT_SNIPPET.format(module=module), env=env)[2]) for _ in range(args.runs)])

    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        ca, chain, key = certificates(tmp)
        aml = LocalAzureML(chain, key).start()
        try:
            ws = aml.add_workspace("ws-bench", server.uri)
            factory = Factory(server.uri)
            factory.ensure_model("bench-aml-cold")
            versions = [factory.version("bench-aml-cold") for _ in range(args.runs + 1)]
            totals, exits, in_process, peaks, mlflow_imported, requests = [], [], [], [], set(), []
            for i, version in enumerate(versions):
                child_env = dict(env, **aml.environment(), AZUREML_CURRENT_CLOUD=CLOUD, REQUESTS_CA_BUNDLE=ca,
                                 SSL_CERT_FILE=ca, EVIDENCE_GATE_STORE=os.path.join(tmp, f"store-{i}.sqlite"))
                child_env.pop("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", None)
                aml.reset()
                started, wall, line = fresh(FIRST_EVENT, ws.resource_id, "bench-aml-cold", version, env=child_env)
                result = json.loads(line)
                requests.append(aml.kinds())
                assert result["stored"] == 1, result
                mlflow_imported.add(result["mlflow_imported"])
                if i:  # the first run warms the page cache
                    totals.append(result["stored_at"] - started)
                    exits.append(wall)
                    in_process.append(result["handled"])
                    peaks.append(result["peak_mb"])
        finally:
            aml.stop()

    rows = [
        ("import mlflow", f"{imports['mlflow'] * 1000:.0f} ms", None, None),
        ("import azure.ai.ml", f"{imports['azure.ai.ml'] * 1000:.0f} ms", None, None),
        *first_event_rows("first Azure ML event", totals, in_process),
        ("  process start -> the process has exited (what this bench counted before 2026-12-02)",
         f"{median(exits) * 1000:.0f} ms", None, None),
        ("  requests to the local Azure ML for it (of which cloud metadata)",
         f"{sum(requests[-1].values())} ({requests[-1]['cloud metadata']})", None, None),
        ("  peak memory of the function process (VmHWM)", f"{median(peaks):.0f} MB", None, None),
        mlflow_imported_row(mlflow_imported),
    ]
    print(table(f"Azure ML cold start (median of {args.runs} fresh processes)", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
