"""Benchmark 4: cold start.

- ``import function_app`` in a fresh interpreter (goal <= 0.5 s), against ``import mlflow`` alone
  (the baseline: what a function app that imports MLflow at module level pays), and the
  interpreter itself (``python -c pass``);
- the first event handled in a fresh process (goal <= 2 s): a fresh interpreter imports
  function_app, builds the function objects and calls ``mlflow_webhook`` with a signed
  ``model_version.created`` delivery for a real version on a real MLflow server; measured from
  process start (the parent's clock) to the stored report (the child prints when it is done).
  An open-source server is read over the REST API (shared/evidence/rest.py): the row "MLflow
  imported by the first event" says whether the check still paid for ``import mlflow``.
Each figure is the median of several fresh processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.common import REPO, Factory, first_event_rows, header, median, mlflow_imported_row, mlflow_server, table, verdict

IMPORT_SNIPPET = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
FIRST_EVENT = r"""
import json, sys, time, uuid
t0 = time.perf_counter()
import azure.functions as func
import function_app
from shared.sources.signatures import mlflow_signature
t_import = time.perf_counter()
fn = {f.get_function_name(): f for f in function_app.functions()}["mlflow_webhook"]
body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00Z",
                   "data": {"name": sys.argv[1], "version": sys.argv[2]}}).encode()
delivery, ts = str(uuid.uuid4()), str(int(time.time()))
headers = {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
           "X-MLflow-Signature": mlflow_signature(sys.argv[3], delivery, ts, body)}
req = func.HttpRequest("POST", "http://localhost/api/webhooks/mlflow", headers=headers, params={}, route_params={}, body=body)
resp = fn.get_user_function()(req=req)
assert resp.status_code == 200, resp.get_body()
print(json.dumps({"import": t_import - t0, "handled": time.perf_counter() - t0,
                  "stored": json.loads(resp.get_body())["stored"], "mlflow_imported": "mlflow" in sys.modules}))
"""


def fresh(code: str, *args: str, env: dict | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env or os.environ, check=True,
                         capture_output=True, text=True).stdout
    return time.perf_counter() - start, out.strip().splitlines()[-1] if out.strip() else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    header("cold start")
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    fresh("pass", env=env)  # page cache warm for all measurements alike
    interpreter = median([fresh("pass", env=env)[0] for _ in range(args.runs)])
    imports = {}
    for module in ("function_app", "mlflow"):
        fresh(IMPORT_SNIPPET.format(module=module), env=env)
        imports[module] = median([float(fresh(IMPORT_SNIPPET.format(module=module), env=env)[1]) for _ in range(args.runs)])

    secret = "bench-secret"
    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        factory = Factory(server.uri)
        factory.ensure_model("bench-cold")
        versions = [factory.version("bench-cold") for _ in range(args.runs + 1)]
        totals, in_process, import_part, mlflow_imported = [], [], [], set()
        for i, version in enumerate(versions):
            child_env = dict(env, MLFLOW_TRACKING_URI=server.uri, MLFLOW_WEBHOOK_SECRET=secret,
                             EVIDENCE_GATE_STORE=os.path.join(tmp, f"store-{i}.sqlite"))
            child_env.pop("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", None)
            wall, line = fresh(FIRST_EVENT, "bench-cold", version, secret, env=child_env)
            result = json.loads(line)
            assert result["stored"] == 1, result
            mlflow_imported.add(result["mlflow_imported"])
            if i:  # the first run warms the page cache
                totals.append(wall)
                in_process.append(result["handled"])
                import_part.append(result["import"])

    t_fa, t_ml = imports["function_app"], imports["mlflow"]
    rows = [
        ("python -c pass (interpreter start + exit)", f"{interpreter * 1000:.0f} ms", None, None),
        ("import mlflow (baseline)", f"{t_ml * 1000:.0f} ms", None, None),
        ("import function_app", f"{t_fa * 1000:.0f} ms", "<= 500 ms", verdict(t_fa <= 0.5)),
        ("import function_app / import mlflow", f"{t_fa / t_ml:.2f}", None, None),
        *first_event_rows("first event", totals, in_process),
        ("  of which import function_app + azure.functions", f"{median(import_part) * 1000:.0f} ms", None, None),
        mlflow_imported_row(mlflow_imported),
    ]
    print(table(f"Cold start (median of {args.runs} fresh processes)", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
