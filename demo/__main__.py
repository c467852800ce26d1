"""`make demo`: Evidence Gate doing its job, end to end, with real parts.

Starts a local MLflow tracking server (SQLite backend, files under .demo/), `evidence-gate serve`
with a local Teams endpoint, creates the MLflow webhook, trains and registers five model versions,
waits for their reports and prints what happened. Exits non-zero when an expected report is missing.

`make demo PLATFORM=databricks-uc` (``--platform databricks-uc``): the same five versions in
Unity Catalog (``main.ml.churn-classifier``) on the local Databricks workspace of the tests
(tests/platforms/databricks/workspace.py, in front of the MLflow server), read with databricks-sdk
over OAuth M2M; Unity Catalog has no webhooks, so reconcile sweeps check them.

`make demo PLATFORM=azureml` (``--platform azureml``): the same five versions as model assets of
an Azure ML workspace on the local Azure ML of the tests (demo/azureml.py), read by
`evidence-gate serve` with azure-identity's managed identity and azure-ai-ml over TLS; each
registration is a ``ModelRegistered`` Event Grid event delivered to ``azureml_events``, each
promotion the asset's stage set to Production, found and checked by a reconcile sweep.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from demo.stack import MlflowServer, ServeProcess, Stack, TeamsInbox

if TYPE_CHECKING:
    from demo.azureml import DemoWorkspace

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
MODEL = "churn-classifier"
WAIT_SECONDS = 90


@dataclass
class Expected:
    version: str
    check: str
    verdict: str
    rules: set[str] = field(default_factory=set)


@dataclass
class Scenario:
    title: str
    expected: list[Expected]


def quiet() -> None:
    """The demo prints its own story; silence the libraries' progress chatter."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read by mlflow when it is imported
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--platform", choices=("mlflow", "databricks-uc", "azureml"), default="mlflow")
    platform = parser.parse_args(argv).platform
    quiet()
    started = time.monotonic()
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    store_path = DEMO / "reports.sqlite"
    try:
        with Stack() as stack:
            print("Starting a local MLflow tracking server (SQLite backend) ...", flush=True)
            server = stack.start(MlflowServer(str(DEMO / "mlflow")).start())
            inbox = stack.start(TeamsInbox(str(DEMO / "teams")))
            secret = secrets.token_urlsafe(24)
            env = dict(os.environ, MLFLOW_TRACKING_URI=server.uri, MLFLOW_WEBHOOK_SECRET=secret,
                       EVIDENCE_GATE_STORE=str(store_path), TEAMS_WEBHOOK_URL=inbox.url,
                       EVIDENCE_GATE_RECONCILE_SCHEDULE="0 0 */6 * * *")
            env.pop("EVIDENCE_GATE_POLICY", None)
            if platform == "databricks-uc":
                scenarios, model = unity_catalog(stack, server, store_path), UC_MODEL
                reports, missing = wait_for_reports(store_path, scenarios, model)
                print_summary(scenarios, reports, model)
                print(f"\nReports: .venv/bin/evidence-gate reports --store {os.path.relpath(store_path, ROOT)}")
                return _finish(started, missing)
            workspace = None
            if platform == "azureml":
                from demo.azureml import DemoWorkspace

                workspace = DemoWorkspace(stack, server, DEMO / "azureml")
                env.update(workspace.environment, EVIDENCE_GATE_REGISTRIES=workspace.resource_id)
            print("Starting evidence-gate serve with a local Teams endpoint ...", flush=True)
            serve = stack.start(ServeProcess(env, str(DEMO / "serve.log"), extra_args=("--notify-interval", "2")))
            if workspace is not None:
                scenarios = azure_ml(workspace, f"{serve.url}/runtime/webhooks/eventgrid?functionName=azureml_events",
                                     server, store_path)
            else:
                scenarios = run_scenarios(server.uri, f"{serve.url}/api/webhooks/mlflow", secret)
            reports, missing = wait_for_reports(store_path, scenarios)
            print_summary(scenarios, reports)
            cards = wait_for_cards(inbox, expected=sum(r["verdict"] != "pass" for r in reports.values()))
            print_pointers(store_path, inbox, cards)
    except KeyboardInterrupt:
        print("\nInterrupted: everything the demo started has been stopped.", file=sys.stderr)
        return 130
    return _finish(started, missing)


def _finish(started: float, missing: list[str]) -> int:
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    if missing:
        print(f"MISSING {len(missing)} expected report(s): " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


# -- Unity Catalog on the local Databricks workspace ----------------------------------------------
UC_MODEL = f"main.ml.{MODEL}"


def unity_catalog(stack: Stack, server: MlflowServer, store_path: Path) -> list[Scenario]:
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.reconcile import reconcile_registry
    from shared.services import Services
    from tests.platforms.databricks.workspace import LocalDatabricks

    workspace = stack.start(LocalDatabricks(server.uri).start())
    for key in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        os.environ.pop(key)
    os.environ.update(DATABRICKS_HOST=workspace.host, DATABRICKS_CLIENT_ID=workspace.client_id,
                      DATABRICKS_CLIENT_SECRET=workspace.client_secret,
                      DATABRICKS_CONFIG_FILE=str(DEMO / "no-databrickscfg"))
    print(f"Local Databricks workspace at {workspace.host} (Unity Catalog {UC_MODEL}, OAuth M2M)\n", flush=True)
    services = Services(engine=Engine(load_policy(), _store(store_path)))

    def sweep(version: str, count: int) -> None:  # Unity Catalog has no webhooks: the reconcile sweep checks
        summary = reconcile_registry("databricks-uc", services)
        print(f"  reconcile: {summary.line()}", flush=True)

    scenarios = run_scenarios(server.uri, settle=sweep)
    sweep("", 0)
    return scenarios


# -- an Azure ML workspace on the local Azure ML ---------------------------------------------------
def azure_ml(workspace: DemoWorkspace, eventgrid_url: str, server: MlflowServer, store_path: Path) -> list[Scenario]:
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.reconcile import reconcile_registry
    from shared.services import Services

    os.environ.update(workspace.environment)  # the sweeps below read the workspace as serve does
    print(f"Local Azure ML workspace {workspace.resource_id}\n  mlFlowTrackingUri {workspace.tracking_uri}"
          " (managed identity, azure-ai-ml, over TLS)", flush=True)
    print(f"Event Grid deliveries -> {eventgrid_url}\n", flush=True)
    services = Services(engine=Engine(load_policy(), _store(store_path)))

    def sweep(version: str, count: int) -> None:  # Event Grid has no stage events: a reconcile sweep checks
        summary = reconcile_registry(workspace.tracking_uri, services)
        print(f"  reconcile: {summary.line()}", flush=True)

    scenarios = run_scenarios(server.uri, settle=sweep, target="Production",
                              announce=lambda version: workspace.announce(eventgrid_url, MODEL, version),
                              promote=lambda client, version: workspace.promote(MODEL, version))
    sweep("", 0)
    return scenarios


# -- the model versions ---------------------------------------------------------------------------
def run_scenarios(tracking_uri: str, webhook_url: str | None = None, secret: str | None = None, *,
                  settle=None, announce=None, promote=None, target: str = "champion") -> list[Scenario]:
    """The five versions. ``settle(version, count)`` waits until the gate has answered the events so
    far (default: the MLflow webhook's reports; a reconcile sweep for Unity Catalog and Azure ML);
    ``announce(version)`` tells the gate of a new version where the registry does not (Azure ML's
    Event Grid event); ``promote(client, version)`` makes the version the ``target`` (default: the
    alias)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    settle = settle or _wait_for_reports
    holder = "the champion" if target == "champion" else target
    promote = promote or (lambda client, version: client.set_registered_model_alias(MODEL, target, version))

    def register(**kwargs) -> str:
        version = _train_and_register(client, data, **kwargs)
        if announce is not None:
            announce(version)
        return version
    if webhook_url:
        client.create_webhook(name="evidence-gate", url=webhook_url, secret=secret,
                              events=["model_version.created", "model_version_alias.created", "model_version_tag.set"])
        print(f"MLflow webhook -> {webhook_url}\n", flush=True)
    client.create_registered_model(MODEL, tags={"owner": "churn-team"}, description="Predicts customer churn")
    mlflow.set_experiment("churn")
    data = _dataset()
    scenarios = []

    print(f"v1: a clean training job, approved by rita, promoted to '{target}'", flush=True)
    v1 = register(c=1.0)
    client.set_model_version_tag(MODEL, v1, "approved_by", "rita")
    settle(v1, count=2)
    promote(client, v1)
    settle(v1, count=3)  # the promotion is checked before the next versions exist
    scenarios.append(Scenario(f"clean job, approved, promoted to {target}",
                              [Expected(v1, "registration", "pass"), Expected(v1, "promotion", "pass")]))

    print("v2: a credential logged as a param", flush=True)
    v2 = register(c=1.0, extra_params={
        "storage_connection": "DefaultEndpointsProtocol=https;AccountName=churnlake;AccountKey="
                              + base64.b64encode(os.urandom(64)).decode() + ";EndpointSuffix=core.windows.net"})
    scenarios.append(Scenario("credential logged as a param", [Expected(v2, "registration", "fail", {"SEC-001"})]))

    print("v3: registered from a run that failed", flush=True)
    v3 = register(c=1.0, run_status="FAILED")
    scenarios.append(Scenario("registered from a failed run", [Expected(v3, "registration", "fail", {"LIN-002"})]))

    print(f"v4: a better model promoted to '{target}' without approval", flush=True)
    v4 = register(c=10.0)
    settle(v4, count=1)
    promote(client, v4)
    scenarios.append(Scenario(f"promoted to {target} without approval",
                              [Expected(v4, "registration", "pass"), Expected(v4, "promotion", "fail", {"GOV-001"})]))

    print(f"v5: an approved model that regresses against {holder}", flush=True)
    settle(v4, count=2)
    v5 = register(c=0.001, features=2)
    client.set_model_version_tag(MODEL, v5, "approved_by", "rita")
    settle(v5, count=2)
    promote(client, v5)
    scenarios.append(Scenario(f"approved, but regresses against {holder}",
                              [Expected(v5, "registration", "pass"), Expected(v5, "promotion", "fail", {"GOV-003"})]))
    return scenarios


def _dataset():
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=2000, n_features=8, n_informative=5, random_state=42, flip_y=0.05)
    frame = pd.DataFrame(x, columns=["tenure", "monthly_charges", "total_charges", "support_calls", "contract_months",
                                     "late_payments", "data_usage", "discount"])
    frame["churned"] = y
    return train_test_split(frame, test_size=0.25, random_state=7)


def _train_and_register(client, data, *, c: float, features: int = 8, extra_params: dict | None = None,
                        run_status: str = "FINISHED") -> str:
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    train, test = data
    columns = list(train.columns[:features])
    tags = {"mlflow.source.type": "JOB", "mlflow.source.name": "pipelines/train_churn.py",
            "mlflow.source.git.commit": _git_commit()}
    with contextlib.redirect_stdout(io.StringIO()), mlflow.start_run(tags=tags) as run:
        mlflow.log_params({"C": c, "features": features, "random_seed": 42, **(extra_params or {})})
        mlflow.log_input(mlflow.data.from_pandas(train, source="abfss://lake@churnlake.dfs.core.windows.net/churn/2026-11.parquet",
                                                 name="churn-2026-11", targets="churned"), context="training")
        model = LogisticRegression(C=c, max_iter=500).fit(train[columns], train["churned"])
        proba = model.predict_proba(test[columns])[:, 1]
        mlflow.log_metrics({"accuracy": accuracy_score(test["churned"], proba > 0.5),
                            "auc": roc_auc_score(test["churned"], proba)})
        info = mlflow.sklearn.log_model(model, name="model", input_example=train[columns].head(3),
                                        pip_requirements=["scikit-learn==1.9.1", "pandas"])
    if run_status != "FINISHED":
        client.set_terminated(run.info.run_id, run_status)
    version = client.create_model_version(MODEL, source=f"models:/{info.model_id}", run_id=run.info.run_id)
    return str(version.version)


def _git_commit() -> str:
    head = ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (ROOT / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return "0" * 40


# -- waiting and printing -------------------------------------------------------------------------
def _store(path: Path):
    from shared.sinks.store import ReportStore

    return ReportStore(str(path))


def _wait_for_reports(version: str, count: int, timeout: float = 30) -> None:
    """Wait until the gate has answered the events so far for this version (keeps the story ordered)."""
    store = _store(DEMO / "reports.sqlite")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(store.query(model=MODEL, version=version)) < count:
        time.sleep(0.2)


def wait_for_reports(store_path: Path, scenarios: list[Scenario], model: str = MODEL) -> tuple[dict, list[str]]:
    store = _store(store_path)
    deadline = time.monotonic() + WAIT_SECONDS
    wanted = [e for s in scenarios for e in s.expected]
    found: dict[tuple[str, str], dict] = {}
    while True:
        for e in wanted:
            for report in store.query(model=model, version=e.version):
                if report["check"] == e.check:
                    found[(e.version, e.check)] = report
                    break
        if len(found) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = []
    for e in wanted:
        report = found.get((e.version, e.check))
        if report is None:
            missing.append(f"v{e.version} {e.check}: no report")
            continue
        fired = {f["rule_id"] for f in report["findings"] if not f["waived"]}
        if report["verdict"] != e.verdict or not e.rules <= fired:
            missing.append(f"v{e.version} {e.check}: expected {e.verdict} with {sorted(e.rules)}, "
                           f"got {report['verdict']} with {sorted(fired)}")
    return {f"{v}/{c}": r for (v, c), r in found.items()}, missing


def print_summary(scenarios: list[Scenario], reports: dict, model: str = MODEL) -> None:
    colour = sys.stdout.isatty()
    paint = {"pass": "32", "warn": "33", "fail": "31"}
    print("\n" + "=" * 100)
    width = max(18, len(model) + 1)
    print(f"{'model':<{width}} {'version':<8} {'what happened':<46} {'check':<13} verdict")
    print("=" * 100)
    for scenario in scenarios:
        for e in scenario.expected:
            report = reports.get(f"{e.version}/{e.check}")
            verdict = report["verdict"] if report else "MISSING"
            shown = f"\033[{paint.get(verdict, '31')}m{verdict.upper()}\033[0m" if colour else verdict.upper()
            print(f"{model:<{width}} {e.version:<8} {scenario.title:<46} {e.check:<13} {shown}")
            for f in (report or {}).get("findings", []):
                if f["waived"]:
                    continue
                print(f"{'':<28}{f['severity']:<8} {f['rule_id']}  {f['message']}")
                print(f"{'':<37}fix: {f['remediation']}")
    print("=" * 100)


def wait_for_cards(inbox: TeamsInbox, expected: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while len(inbox.received) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return len(inbox.received)


def print_pointers(store_path: Path, inbox: TeamsInbox, cards: int) -> None:
    rel = os.path.relpath(store_path, ROOT)
    print("\nWhere to look next:")
    print(f"  reports   .venv/bin/evidence-gate reports --store {rel}            (add --verdict fail, --format json)")
    print(f"  Teams     {cards} Adaptive Card(s) received, saved as JSON in {os.path.relpath(inbox.folder, ROOT)}/")
    pngs = render_cards(inbox.folder)
    if pngs:
        print(f"            rendered with the official adaptivecards renderer: {', '.join(pngs)}")
    print("  telemetry one span, one EvidenceGateReport event and one trace per finding per check; exported to")
    print("            Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set (docs/telemetry.md,")
    print("            queries in infra/queries/*.kql)")
    print(f"  logs      {os.path.relpath(DEMO / 'serve.log', ROOT)} (evidence-gate serve), .demo/mlflow/server.log")


def render_cards(folder: Path) -> list[str]:
    from demo.render import render_card_png

    pngs = []
    for card in sorted(folder.glob("card-*.json")):
        png = render_card_png(card, card.with_suffix(".png"))
        if png:
            pngs.append(os.path.relpath(png, ROOT))
    return pngs


if __name__ == "__main__":
    sys.exit(main())
