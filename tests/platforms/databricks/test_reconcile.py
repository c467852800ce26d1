"""Unity Catalog has no webhooks: the reconcile sweep is its trigger. UC lists versions one model
at a time (a `name=` filter, no `order_by`), so a sweep lists the registered models, then the
versions of the models updated since the watermark. 200 versions over 40 models, on a workspace of
their own: one sweep covers them all, a second one with no change makes a handful of requests (the
model listing twice, the versions and the record of the one model within the 5-minute overlap)."""

from __future__ import annotations

import os
import sqlite3
import time

import mlflow
import pytest

from demo.stack import MlflowServer
from shared.engine import Engine
from shared.policy import load_policy
from shared.reconcile import reconcile_registry
from shared.services import Services
from shared.sinks.store import ReportStore
from tests.functions.conftest import FunctionsKit
from tests.platforms.databricks.conftest import point_at
from tests.platforms.databricks.workspace import LocalDatabricks

MODELS, PER_MODEL = 40, 5
TEN_MINUTES_MS = 600_000


@pytest.fixture(scope="module")
def uc_registry(tmp_path_factory):
    server = MlflowServer(str(tmp_path_factory.mktemp("mlflow-uc-reconcile"))).start()
    workspace = LocalDatabricks(server.uri).start()
    try:
        before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        kit = FunctionsKit(server.uri)  # its constructor points MLflow's global URIs at this server
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        base = kit.model_version("model-00", style="runs_uri")  # one trained run, its MLmodel logged
        for m in range(MODELS):
            name = f"model-{m:02d}"
            kit.ensure_model(name)
            for _ in range(PER_MODEL - (1 if m == 0 else 0)):
                kit.client.create_model_version(name, source=f"runs:/{base.run_id}/model", run_id=base.run_id)
        # a registry with history: model m last changed (m + 1) * 10 minutes ago, so only the newest
        # model is within the sweep's 5-minute overlap of the watermark
        now_ms = int(time.time() * 1000)
        conn = sqlite3.connect(os.path.join(server.root, "mlflow.db"))
        with conn:
            for m in range(MODELS):
                stamp = now_ms - (m + 1) * TEN_MINUTES_MS
                for table in ("registered_models", "model_versions"):
                    conn.execute(f"UPDATE {table} SET last_updated_time = ? WHERE name = ?", (stamp, f"model-{m:02d}"))
        conn.close()
        yield workspace
    finally:
        workspace.stop()
        server.stop()


def test_one_sweep_covers_every_version_and_a_quiet_sweep_is_cheap(uc_registry, monkeypatch, tmp_path):
    point_at(monkeypatch, tmp_path, uc_registry.host, DATABRICKS_TOKEN=uc_registry.token)
    services = Services(engine=Engine(load_policy(), ReportStore(str(tmp_path / "reports.sqlite"))))

    started = time.monotonic()
    first = reconcile_registry("databricks-uc", services, rate=0)
    took = time.monotonic() - started
    checked = {(r["model"], r["version"]) for r in first.reports}
    expected = {(uc_registry.uc_name(f"model-{m:02d}"), str(v)) for m in range(MODELS) for v in range(1, PER_MODEL + 1)}
    assert first.complete and first.listed == MODELS * PER_MODEL and checked == expected
    assert uc_registry.count("order_by") == 0

    before = uc_registry.count("/api/")
    second = reconcile_registry("databricks-uc", services, rate=0)
    quiet = uc_registry.count("/api/") - before
    print(f"\nUC reconcile: {first.listed} versions over {MODELS} models checked in {took:.1f} s;"
          f" a second sweep with no change: {quiet} requests")
    assert second.complete and (second.listed, second.checked) == (PER_MODEL, 0)  # the overlap: model-00 again
    assert quiet <= 6
