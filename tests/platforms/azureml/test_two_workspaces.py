"""Two workspaces in one process never mix their evidence: each has its own MLflow server behind
the local Azure ML, the same model name and version in both, checked alternately."""

from __future__ import annotations

import mlflow
import pytest

from demo.stack import MlflowServer
from shared.engine import Engine
from shared.evidence import azureml
from shared.policy import load_policy
from shared.report import Trigger
from tests.engine.conftest import AZURE_CONN, rule_ids
from tests.platforms.azureml.local_azureml import RESOURCE_GROUP, SUBSCRIPTION
from tests.support.kit import RegistryKit

MODEL = "churn-shared-name"


@pytest.fixture(scope="module")
def second(local_azureml, mlflow_server, tmp_path_factory):
    """A second workspace on its own MLflow server, and one version of MODEL in each workspace."""
    server = MlflowServer(str(tmp_path_factory.mktemp("mlflow-fraud"))).start()
    try:
        ws = local_azureml.add_workspace("ws-fraud", server.uri)
        fraud = RegistryKit(server.uri).model_version(MODEL, params={"learning_rate": "0.1", "storage": AZURE_CONN})
        mlflow.set_tracking_uri(mlflow_server.uri)  # the session's kit goes on with the first server
        mlflow.set_registry_uri(mlflow_server.uri)
        churn = RegistryKit(mlflow_server.uri).model_version(MODEL)
        yield ws, fraud, churn
    finally:
        server.stop()


def test_two_workspaces_in_one_process_never_mix_evidence(aml_env, workspace, second, store):
    fraud_ws, fraud, churn = second
    engine = Engine(load_policy(), store)
    reports = []
    for _ in range(2):
        for ws, trained in ((workspace, churn), (fraud_ws, fraud)):
            reports.append(engine.check_version(ws.tracking_uri, MODEL, trained.version,
                                                trigger=Trigger("cli", "check")))
    churn_reports, fraud_reports = reports[0::2], reports[1::2]
    assert {r["subject"]["run_id"] for r in churn_reports} == {churn.run_id}
    assert {r["subject"]["run_id"] for r in fraud_reports} == {fraud.run_id}
    assert all("SEC-001" in rule_ids(r) for r in fraud_reports)
    assert all(r["verdict"] == "pass" for r in churn_reports), churn_reports[0]["findings"]
    names = [key[2] for key in azureml._CONNECTIONS if key[:2] == (SUBSCRIPTION.lower(), RESOURCE_GROUP.lower())]
    assert sorted(n for n in names if n in ("ws-churn", "ws-fraud")) == ["ws-churn", "ws-fraud"]  # one connection each
