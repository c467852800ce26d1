"""Shared pieces of the benchmarks: a real local MLflow server (the demo's), the counting proxy of
the tests in front of it, cheap model versions, and the table printer.

Versions are made cheaply: one run with params, metrics, a dataset input and a git commit, one
LoggedModel (``models:/m-<id>``) whose artifacts are a tiny MLmodel + requirements.txt logged once,
and as many model versions as wanted registered from it (``create_model_version`` with the run id),
which is exactly the shape of a normal MLflow 3 registration (6 registry requests per check).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Same client settings as the service and the tests: no MLflow usage telemetry, short retries.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")

GIT_COMMIT = "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.7
  sklearn:
    sklearn_version: 1.9.1
signature:
  inputs: '[{"type": "double", "name": "x"}]'
  outputs: '[{"type": "long"}]'
mlflow_version: 3.15.0
"""


@contextlib.contextmanager
def mlflow_server(webhook_cache_ttl: int | None = None):
    """A fresh MLflow server (SQLite backend, proxied artifacts) in a temporary directory."""
    from demo.stack import MlflowServer

    saved = os.environ.get("MLFLOW_WEBHOOK_CACHE_TTL")
    if webhook_cache_ttl is not None:
        os.environ["MLFLOW_WEBHOOK_CACHE_TTL"] = str(webhook_cache_ttl)
    with tempfile.TemporaryDirectory(prefix="evidence-gate-bench-") as root:
        try:
            server = MlflowServer(root).start()
        finally:
            if webhook_cache_ttl is not None:
                if saved is None:
                    os.environ.pop("MLFLOW_WEBHOOK_CACHE_TTL", None)
                else:
                    os.environ["MLFLOW_WEBHOOK_CACHE_TTL"] = saved
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def counting_proxy(upstream: str):
    from tests.support.proxy import CountingProxy

    proxy = CountingProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()


class Factory:
    """Cheap, fully evidenced MLflow 3 model versions (see the module docstring)."""

    def __init__(self, uri: str):
        from mlflow import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.experiment_id = self.client.create_experiment(f"bench-{time.time_ns()}")
        self.run_id, self.model_id = self._logged_model()
        self.origins: dict[str, tuple[str, str]] = {}  # registered model -> its own (run id, LoggedModel id)

    def _logged_model(self) -> tuple[str, str]:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        c = self.client
        run = c.create_run(self.experiment_id, tags={"mlflow.source.type": "JOB", "mlflow.user": "carol",
                                                     "mlflow.source.git.commit": GIT_COMMIT})
        run_id = run.info.run_id
        for key, value in {"learning_rate": "0.1", "max_iter": "100"}.items():
            c.log_param(run_id, key, value)
        for key, value in {"accuracy": 0.91, "auc": 0.93}.items():
            c.log_metric(run_id, key, value)
        ds = Dataset(name="churn-train", digest="d41d8cd9", source_type="s3",
                     source=json.dumps({"uri": "s3://datalake/churn/train.parquet"}))
        c.log_inputs(run_id, [DatasetInput(ds, tags=[InputTag("mlflow.data.context", "training")])])
        logged = c.create_logged_model(self.experiment_id, name="model", source_run_id=run_id)
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "MLmodel").write_text(MLMODEL)
            Path(tmp, "requirements.txt").write_text("scikit-learn==1.9.1\n")
            c.log_model_artifacts(logged.model_id, tmp)
        c.finalize_logged_model(logged.model_id, "READY")
        c.set_terminated(run_id, "FINISHED")
        return run_id, logged.model_id

    def ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name, tags={"owner": "team-churn"})
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def version(self, name: str, tags: dict | None = None, session=None) -> str:
        """One model version through the REST API (``model-versions/create``: one request; the
        MlflowClient would also poll the new version until it is READY)."""
        import requests

        tags = {"owner": "team-churn", **(tags or {})}
        run_id, model_id = self.origins.get(name, (self.run_id, self.model_id))
        body = {"name": name, "source": f"models:/{model_id}", "run_id": run_id, "model_id": model_id,
                "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        resp = (session or requests).post(f"{self.uri}/api/2.0/mlflow/model-versions/create", json=body, timeout=60)
        resp.raise_for_status()
        return str(resp.json()["model_version"]["version"])

    def many(self, models: list[str], per_model: int, threads: int = 8) -> list[tuple[str, str]]:
        """``per_model`` versions of each model, registered through the REST API by a few threads.
        Each registered model gets its own run and LoggedModel: the server records every version
        registered from a LoggedModel in one tag of it (read, extended and written again), which
        two threads registering from the same LoggedModel at once can collide on."""
        for name in models:
            self.ensure_model(name)
        with ThreadPoolExecutor(threads) as pool:
            # one thread per model at a time keeps each model's version numbers sequential
            futures = [pool.submit(self._batch, n, per_model) for n in models]
            return [pair for f in futures for pair in f.result()]

    def prepare(self, models: list[str], threads: int = 8) -> None:
        """The registered models and each one's run and LoggedModel, without versions."""
        for name in models:
            self.ensure_model(name)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(self._origin, models))

    def _origin(self, name: str) -> tuple[str, str]:
        if name not in self.origins:
            self.origins[name] = self._logged_model()
        return self.origins[name]

    def _batch(self, name: str, count: int) -> list[tuple[str, str]]:
        import requests

        self._origin(name)
        with requests.Session() as session:
            return [(name, self.version(name, session=session)) for _ in range(count)]


# -- figures --------------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


# Memory of a child process, from inside it: pasted at the top of the benches' child scripts
# (after ``import os``).
RSS_HELPERS = r'''
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def peak_mb():
    # VmHWM: this process image's peak RSS. Not ru_maxrss, which after fork + exec still holds the
    # parent's RSS at the fork (the benchmark parent has MLflow imported).
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
'''

FIRST_EVENT_GOAL_SECONDS = 2.0


def first_event_rows(what: str, totals: list[float], in_process: list[float] | None = None) -> list[tuple]:
    """The cold-start benches' headline rows: a first event, process start to stored report
    (median, against the 2 s goal), and what of it was spent after the interpreter started."""
    first = median(totals)
    rows = [(f"{what}: process start -> report stored (wall)", f"{first * 1000:.0f} ms", "<= 2000 ms",
             verdict(first <= FIRST_EVENT_GOAL_SECONDS))]
    if in_process:
        rows.append(("  of which in the process after interpreter start", f"{median(in_process) * 1000:.0f} ms", None, None))
    return rows


def mlflow_imported_row(imported: set) -> tuple:
    return ("  MLflow imported by the first event", "yes" if True in imported else "no", None, None)


def table(title: str, rows: list[tuple], headers: tuple = ("figure", "measured", "goal", "met")) -> str:
    cells = [tuple(str(c) for c in headers)] + [tuple("" if c is None else str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [f"\n{title}", line, "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=False)) + " |", line]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |" for r in cells[1:]]
    out.append(line)
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def header(name: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"== {name} ==  machine: {machine()}; load average {load} (1, 5, 15 min)", flush=True)
