"""Benchmark 5: the function app's footprint (issue 15, goal 4).

- **Peak RSS of one function process**: a fresh interpreter that sees only the deployed package
  (``python -S`` with ``PYTHONPATH`` = the ``--target`` directory below and the app's code, as the
  Functions host puts ``.python_packages`` on the path: none of the dev venv's extra libraries,
  which MLflow would import when present) imports ``function_app``, loads every
  registry backend (the REST backend; the MLflow client backend with ``mlflow``; azure-ai-ml of the
  Azure ML backend; databricks-sdk), then handles N (default 1,000) signed ``model_version.created``
  deliveries by calling the ``mlflow_webhook`` function itself from a few threads (the Python
  worker runs sync functions in a thread pool), each a real registration check against the local
  MLflow server stored in the SQLite store; a share of extra checks goes through the MLflow client
  backend so its client, stores and artifact repositories are really in memory. The child reports
  its RSS (``/proc/self/statm``) after each stage and its peak (``VmHWM`` in ``/proc/self/status``).
- **Deployed package size**: ``pip install -r requirements.txt --target <tmp>`` (what the Flex
  deployment zip carries besides our own code), in total and per distribution from each
  ``*.dist-info/RECORD``, grouped as mlflow, azureml, databricks and azure.

Goal: the worker's peak fits comfortably in a 512 MB Flex instance, which also holds the Functions
host (.NET) process: at most half of it, 256 MB, for the Python worker."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, RSS_HELPERS, Factory, header, mlflow_server, table, verdict

INSTANCE_MB = 512
GOAL_PEAK_MB = INSTANCE_MB // 2
SECRET = "bench-footprint-secret"
GROUPS = ("mlflow", "azureml", "databricks", "azure")

CHILD = r"""
import dataclasses, json, os, sys, time, uuid
from concurrent.futures import ThreadPoolExecutor
""" + RSS_HELPERS + r"""

marks = [("interpreter started", rss_mb())]
import azure.functions as func
import function_app
marks.append(("import function_app", rss_mb()))

import mlflow, azure.ai.ml, databricks.sdk  # every registry backend's libraries
from shared.evidence import mlflow_client, rest
from shared.evidence.registry import RegistryClient
from shared.report import Trigger
from shared.sources.signatures import mlflow_signature
marks.append(("every backend imported (mlflow, azure-ai-ml, databricks-sdk)", rss_mb()))

model, secret, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
webhook_versions, client_versions = json.loads(sys.argv[4]), json.loads(sys.argv[5])
fn = {f.get_function_name(): f for f in function_app.functions()}["mlflow_webhook"].get_user_function()

def deliver(version):
    body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"name": model, "version": version}}).encode()
    delivery, ts = str(uuid.uuid4()), str(int(time.time()))
    headers = {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
               "X-MLflow-Signature": mlflow_signature(secret, delivery, ts, body)}
    req = func.HttpRequest("POST", "http://localhost/api/webhooks/mlflow", headers=headers, params={},
                           route_params={}, body=body)
    resp = fn(req=req)
    assert resp.status_code == 200, resp.get_body()
    return json.loads(resp.get_body())["stored"]

engine = function_app.services().engine
through_mlflow = dataclasses.replace(engine, client_factory=lambda uri: RegistryClient(uri, backend="mlflow"))
trigger = Trigger("cli", "check", None, None)

def client_check(version):
    report = through_mlflow.check_version(os.environ["MLFLOW_TRACKING_URI"], model, version, trigger=trigger)
    engine.store.save(report)
    return 1

with ThreadPoolExecutor(threads) as pool:
    stored = sum(pool.map(client_check, client_versions))
    marks.append((f"{len(client_versions)} checks through the MLflow client backend", rss_mb()))
    step = max(1, len(webhook_versions) // 4)
    for start in range(0, len(webhook_versions), step):
        stored += sum(pool.map(deliver, webhook_versions[start:start + step]))
        marks.append((f"{min(start + step, len(webhook_versions))} webhook checks (REST backend)", rss_mb()))

assert "mlflow" in sys.modules and "azure.ai.ml" in sys.modules and "databricks.sdk" in sys.modules
print(json.dumps({"marks": marks, "peak": peak_mb(), "stored": stored}))
"""


def process_footprint(package: Path, uri: str, model: str, webhook_versions: list[str], client_versions: list[str],
                      threads: int, store: str) -> dict:
    """The child above, on the deployed package only (``-S``: no site-packages of this venv)."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, MLFLOW_WEBHOOK_SECRET=SECRET, EVIDENCE_GATE_STORE=store,
               PYTHONPATH=os.pathsep.join([str(package), str(REPO)]))
    for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL",
                 "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-S", "-c", CHILD, model, SECRET, str(threads), json.dumps(webhook_versions),
                          json.dumps(client_versions)], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def distribution_sizes(target: Path) -> dict[str, int]:
    """Bytes on disk of each installed distribution, from the files its RECORD lists."""
    sizes = {}
    for record in target.glob("*.dist-info/RECORD"):
        name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0].lower().replace("_", "-")
        total = 0
        with record.open(newline="") as f:
            for row in csv.reader(f):
                path = target / row[0] if row else None
                if path is not None and path.is_file():
                    total += path.stat().st_size
        sizes[name] = total
    return sizes


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes in the files, bytes on disk as ``du`` counts them)."""
    files = [p.stat() for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(st.st_size for st in files), sum(st.st_blocks * 512 for st in files)


def install_package(target: Path) -> None:
    """The runtime dependencies as the deployment carries them (from pip's cache when warm)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), "-r", str(REPO / "requirements.txt")],
                   check=True, capture_output=True, text=True)


def group_of(name: str) -> str:
    for group in GROUPS:  # azureml before azure
        if name == group or name.startswith(f"{group}-"):
            return group
    return "other"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=1000, help="webhook checks through the REST backend")
    parser.add_argument("--client-checks", type=int, default=50, help="checks through the MLflow client backend")
    parser.add_argument("--threads", type=int, default=8, help="threads calling the function (the worker's pool)")
    args = parser.parse_args(argv)
    header("function app footprint")

    with mlflow_server() as server, tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp, "package")
        install_package(package)
        (total, on_disk), sizes = tree_size(package), distribution_sizes(package)
        factory = Factory(server.uri)
        model = "bench-footprint"
        versions = [v for _, v in factory.many([model], args.checks + args.client_checks)]
        result = process_footprint(package, server.uri, model, versions[args.client_checks:],
                                   versions[:args.client_checks], args.threads, os.path.join(tmp, "reports.sqlite"))
    assert result["stored"] == args.checks + args.client_checks, result

    peak = result["peak"]
    rows = [(f"RSS after: {label}", f"{mb:.0f} MB", None, None) for label, mb in result["marks"]]
    rows.append((f"peak RSS of the function process ({args.threads} threads)", f"{peak:.0f} MB",
                 f"<= {GOAL_PEAK_MB} MB (half a {INSTANCE_MB} MB instance)", verdict(peak <= GOAL_PEAK_MB)))
    print(table(f"Function process: import function_app, every backend loaded, {args.client_checks} checks through"
                f" the MLflow client + {args.checks} signed webhooks (REST backend)", rows))

    groups = {g: 0 for g in (*GROUPS, "other")}
    for name, size in sizes.items():
        groups[group_of(name)] += size

    def mb(n: int) -> str:
        return f"{n / 2**20:.1f} MB"

    rows = [("pip install -r requirements.txt --target (total, file sizes)", mb(total)),
            ("  the same on disk (du)", mb(on_disk))]
    rows += [(f"  {g} distributions", mb(size)) for g, size in groups.items()]
    rows += [(f"  largest: {name}", mb(size)) for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]]
    print(table("Deployed package (runtime dependencies, with the bytecode pip compiles)", rows,
                headers=("figure", "measured")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
