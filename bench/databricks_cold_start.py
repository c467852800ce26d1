"""Benchmark: the first Databricks event in a fresh process, on the local Databricks workspace
(tests/platforms/databricks/workspace.py, in front of a real MLflow server).

A fresh interpreter imports function_app and calls ``databricks_registry_webhook`` with a signed
``MODEL_VERSION_CREATED`` delivery; the check reads the workspace registry with databricks-sdk
(OAuth M2M: host metadata, OIDC discovery, token, then the registry). Measured from process start
(the parent's clock) to the stored report, next to ``import mlflow`` (what the first event paid
when Databricks went through the MLflow client), with the HTTP requests the workspace received
for the check. Each figure is the median of several fresh processes."""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from bench.cold_start import IMPORT_SNIPPET, fresh
from bench.common import Factory, first_event_rows, header, median, mlflow_imported_row, mlflow_server, table
from tests.platforms.databricks.workspace import LocalDatabricks

FIRST_EVENT = r"""
import json, sys, time
t0 = time.perf_counter()
import azure.functions as func
import function_app
from shared.sources.signatures import databricks_signature
fn = {f.get_function_name(): f for f in function_app.functions()}["databricks_registry_webhook"]
body = json.dumps({"event": "MODEL_VERSION_CREATED", "webhook_id": "bench", "event_timestamp": int(time.time() * 1000),
                   "model_name": sys.argv[1], "version": sys.argv[2]}).encode()
headers = {"Content-Type": "application/json", "X-Databricks-Signature": databricks_signature(sys.argv[3], body)}
req = func.HttpRequest("POST", "http://localhost/api/webhooks/databricks/registry", headers=headers, params={},
                       route_params={}, body=body)
resp = fn.get_user_function()(req=req)
assert resp.status_code == 200, resp.get_body()
print(json.dumps({"handled": time.perf_counter() - t0, "stored": json.loads(resp.get_body())["stored"],
                  "mlflow_imported": "mlflow" in sys.modules}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    header("Databricks cold start")
    env = {k: v for k, v in os.environ.items()
           if k != "APPLICATIONINSIGHTS_CONNECTION_STRING" and not k.startswith("DATABRICKS_")}
    fresh(IMPORT_SNIPPET.format(module="mlflow"), env=env)
    t_mlflow = median([float(fresh(IMPORT_SNIPPET.format(module="mlflow"), env=env)[1]) for _ in range(args.runs)])
    secret = "bench-databricks-secret"
    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        workspace = LocalDatabricks(server.uri).start()
        try:
            factory = Factory(server.uri)
            factory.ensure_model("bench-dbx-cold")
            versions = [factory.version("bench-dbx-cold") for _ in range(args.runs + 1)]
            totals, requests, mlflow_imported = [], [], set()
            for i, version in enumerate(versions):
                child_env = dict(env, DATABRICKS_HOST=workspace.host, DATABRICKS_CLIENT_ID=workspace.client_id,
                                 DATABRICKS_CLIENT_SECRET=workspace.client_secret, DATABRICKS_WEBHOOK_SECRET=secret,
                                 DATABRICKS_CONFIG_FILE=os.path.join(tmp, "none"),
                                 EVIDENCE_GATE_STORE=os.path.join(tmp, f"store-{i}.sqlite"))
                child_env.pop("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", None)
                workspace.reset()
                wall, line = fresh(FIRST_EVENT, "bench-dbx-cold", version, secret, env=child_env)
                result = json.loads(line)
                assert result["stored"] == 1, result
                mlflow_imported.add(result["mlflow_imported"])
                if i:  # the first run warms the page cache
                    totals.append(wall)
                    requests.append(workspace.count())
        finally:
            workspace.stop()
    rows = [
        ("import mlflow (what the MLflow client path paid first)", f"{t_mlflow * 1000:.0f} ms", None, None),
        *first_event_rows("first Databricks event", totals),
        ("  HTTP requests to the workspace (auth included)", f"{median(requests):.0f}", None, None),
        mlflow_imported_row(mlflow_imported),
    ]
    print(table(f"Databricks cold start (median of {args.runs} fresh processes)", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
