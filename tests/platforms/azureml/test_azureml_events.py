"""Each Azure ML Event Grid event type, delivered as the Functions Event Grid trigger delivers it
(both schemas), produces the right report against the local Azure ML: the workspace is the event's
topic/source, its tracking URI the workspace's mlFlowTrackingUri (the services built from the
settings: no region setting, no stand-in resolver).
A poison event is completed, a transient one raises."""

from __future__ import annotations

import pytest

from shared.errors import RegistryUnavailable
from shared.services import Services
from shared.sources.azureml import WorkspaceTrackingUris
from tests.functions.conftest import Gate, payload
from tests.functions.test_azureml_events import decode, first
from tests.platforms.azureml.local_azureml import Fault


@pytest.fixture()
def aml_gate(aml_env, workspace, tmp_path, monkeypatch):
    for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL", "EVIDENCE_GATE_POLICY",
                 "EVIDENCE_GATE_WAIVERS", "EVIDENCE_GATE_REGISTRIES", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                 "EVIDENCE_GATE_AZUREML_REGION", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVIDENCE_GATE_STORE", str(tmp_path / "reports.sqlite"))
    services = Services.from_settings()
    assert type(services.azureml_tracking_uri) is WorkspaceTrackingUris and services.azureml_tracking_uri.region is None
    yield Gate(workspace.tracking_uri, str(tmp_path / "reports.sqlite"), None, services)


@pytest.fixture(scope="module")
def model(kit):
    return kit.model_version("aml-events"), kit.model_version("aml-events", git_commit=None)


def on_workspace(event: dict, workspace) -> dict:
    event["source" if "specversion" in event else "topic"] = workspace.resource_id
    return event


@pytest.mark.parametrize("fixture", ["azureml-model-registered.eventgrid.json",
                                     "azureml-model-registered.camelcase.eventgrid.json",
                                     "azureml-model-registered.cloudevents.json"])
def test_model_registered_is_a_registration_check_on_the_workspace(aml_gate, workspace, model, fixture):
    trained = model[0]
    event = on_workspace(first(fixture), workspace)
    for key in list(event["data"]):
        if key.lower() == "modelname":
            event["data"][key] = trained.model
        if key.lower() == "modelversion":
            event["data"][key] = trained.version
    event["subject"] = f"models/{trained.model}:{trained.version}"
    assert aml_gate.call("azureml_events", decode(event)) is None
    (report,) = aml_gate.reports()
    assert report["check"] == "registration" and report["verdict"] == "pass", report["findings"]
    assert report["subject"]["run_id"] == trained.run_id
    assert report["subject"]["registry"].startswith(f"azureml://{workspace.aml.netloc}/mlflow/")


def test_run_completed_is_a_run_check_with_the_job_evidence(aml_gate, workspace, kit):
    run_id = kit.run(dataset=False, git_commit=None)
    kit.client.set_terminated(run_id, "FINISHED")
    workspace.set_job(run_id, inputs={"training_data": {"jobInputType": "uri_folder", "uri": "azureml:churn-train:1"}})
    event = on_workspace(first("azureml-run-completed.eventgrid.json"), workspace)
    event["data"]["runId"] = run_id
    event["subject"] = f"experiments/{event['data']['experimentId']}/runs/{run_id}"
    aml_gate.call("azureml_events", decode(event))
    (report,) = aml_gate.reports()
    assert report["check"] == "run" and report["subject"]["run_id"] == run_id
    rules = {f["rule_id"] for f in report["findings"]}
    assert "LIN-005" not in rules and "LIN-004" in rules  # data from the job inputs; no git anywhere


def test_run_status_changed_failed_is_job_001(aml_gate, workspace):
    event = on_workspace(first("azureml-run-status-changed.eventgrid.json"), workspace)
    aml_gate.call("azureml_events", decode(event))
    (report,) = aml_gate.reports()
    assert [f["rule_id"] for f in report["findings"]] == ["JOB-001"]


def test_model_deployed_checks_every_model_id(aml_gate, workspace, model):
    v1, v2 = model
    registered = on_workspace(first("azureml-model-registered.eventgrid.json"), workspace)
    registered["data"].update(ModelName=v1.model, ModelVersion=int(v1.version))
    aml_gate.call("azureml_events", decode(registered))  # v1 has a passing registration report, v2 none
    deployed = on_workspace(first("azureml-model-deployed.eventgrid.json"), workspace)
    deployed["data"]["ModelIds"] = f"{v1.model}:{v1.version},{v2.model}:{v2.version}"
    aml_gate.call("azureml_events", decode(deployed))
    dep = {r["subject"]["version"]: {f["rule_id"] for f in r["findings"]}
           for r in aml_gate.reports() if r["check"] == "deployment"}
    assert "DEP-001" not in dep[v1.version] and "DEP-001" in dep[v2.version]


def test_a_poison_event_is_completed_and_a_transient_one_raises(aml_gate, aml_env, workspace, model):
    poison = on_workspace(first("azureml-model-registered.eventgrid.json"), workspace)
    poison.update(data={"ModelName": "m"}, subject="models/m")
    assert aml_gate.call("azureml_events", decode(poison)) is None
    event = on_workspace(first("azureml-model-registered.eventgrid.json"), workspace)
    event["data"].update(ModelName=model[0].model, ModelVersion=int(model[0].version))
    aml_env.always("/models/", Fault(status=503, retry_after=0))
    with pytest.raises(RegistryUnavailable):
        aml_gate.call("azureml_events", decode(event))
    assert aml_gate.store.count() == 0
    aml_env.reset()
    aml_gate.call("azureml_events", decode(event))
    assert aml_gate.store.count() == 1


def test_the_payload_fixtures_name_another_workspace_until_retargeted():
    assert payload("azureml-model-registered.eventgrid.json")[0]["topic"].endswith("/workspaces/ws-ml")
