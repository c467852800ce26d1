"""`azureml_events`: both Event Grid schemas through func.EventGridEvent / func.CloudEvent, key
casing, numeric and string versions, subject parsing, the four event types, poison vs transient."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from shared.errors import BadInput, ConfigurationError, RegistryUnavailable
from shared.sources import azureml
from shared.sources.azureml import WorkspaceTrackingUris
from tests.functions.conftest import payload, unique
from tests.support.proxy import Fault

WS = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-ml"


def decode(event: dict):
    """What the Functions runtime hands the function: the library's own Event Grid converter."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})


def first(name: str) -> dict:
    body = payload(name)
    return body[0] if isinstance(body, list) else body


@pytest.fixture(scope="module")
def model(fn_kit):
    name = unique("aml")
    return name, fn_kit.model_version(name), fn_kit.model_version(name, git_commit=None)


@pytest.mark.parametrize("fixture,version", [
    ("azureml-model-registered.eventgrid.json", 1),  # PascalCase, number
    ("azureml-model-registered.camelcase.eventgrid.json", "1"),  # camelCase, string
    ("azureml-model-registered.cloudevents.json", 1),  # CloudEvents 1.0
])
def test_model_registered_in_every_shape_is_a_registration_check(gate, model, fixture, version):
    name = model[0]
    event = first(fixture)
    data = event["data"]
    for key in list(data):
        if key.lower() == "modelname":
            data[key] = name
        if key.lower() == "modelversion":
            data[key] = version
    event["subject"] = f"models/{name}:{version}"
    decoded = decode(event)
    assert isinstance(decoded, func.CloudEvent if "specversion" in event else func.EventGridEvent)
    assert gate.call("azureml_events", decoded) is None
    (report,) = gate.reports()
    assert report["check"] == "registration" and report["subject"]["model"] == name and report["subject"]["version"] == "1"
    assert report["trigger"] == {"source": "azureml", "event_type": "ModelRegistered", "event_id": event["id"],
                                 "event_time": report["trigger"]["event_time"]}
    gate.call("azureml_events", decode(event))  # redelivery
    assert gate.store.count() == 1


def test_subject_is_split_on_the_last_colon_when_data_has_no_model():
    event = first("azureml-model-registered.eventgrid.json")
    event["data"] = {}
    event["subject"] = "models/team:churn:model:7"
    parsed = azureml.parse_envelope(event)
    assert (parsed.model, parsed.version, parsed.workspace) == ("team:churn:model", "7", WS)


def test_run_completed_is_a_run_check(gate, fn_kit):
    run_id = fn_kit.run()
    fn_kit.client.set_terminated(run_id, "FINISHED")
    event = first("azureml-run-completed.eventgrid.json")
    event["data"]["runId"] = run_id
    event["subject"] = f"experiments/{event['data']['experimentId']}/runs/{run_id}"
    gate.call("azureml_events", decode(event))
    (report,) = gate.reports()
    assert report["check"] == "run" and report["subject"]["run_id"] == run_id


def test_run_status_changed_failed_is_job_001_and_other_statuses_are_ignored(gate):
    event = first("azureml-run-status-changed.eventgrid.json")
    gate.call("azureml_events", decode(event))
    (report,) = gate.reports()
    assert [f["rule_id"] for f in report["findings"]] == ["JOB-001"]
    assert report["subject"]["run_id"] == "my_exp1_1554835758_38dbaa94"
    event["data"]["runStatus"] = "Completed"
    event["id"] = "other"
    gate.call("azureml_events", decode(event))
    assert gate.store.count() == 1


def test_model_deployed_checks_every_model_id_for_a_passing_report(gate, model):
    name, v1, v2 = model
    registered = first("azureml-model-registered.eventgrid.json")
    registered["data"].update(ModelName=name, ModelVersion=int(v1.version))
    gate.call("azureml_events", decode(registered))  # v1 gets a passing registration report; v2 none
    deployed = first("azureml-model-deployed.eventgrid.json")
    deployed["data"]["ModelIds"] = f"{name}:{v1.version},{name}:{v2.version}"
    gate.call("azureml_events", decode(deployed))
    dep = {r["subject"]["version"]: r for r in gate.reports() if r["check"] == "deployment"}
    assert sorted(dep) == [v1.version, v2.version]
    rules = {v: {f["rule_id"] for f in r["findings"]} for v, r in dep.items()}
    assert "DEP-001" not in rules[v1.version] and "DEP-001" in rules[v2.version]


@pytest.mark.parametrize("mutate", [
    lambda e: e.update(topic="/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z"),
    lambda e: e.update(data={"ModelName": "m"}, subject="models/m"),
    lambda e: e.update(data=["not", "an", "object"]),
    lambda e: e.update(id=None),
])
def test_poison_events_are_logged_and_not_redelivered(gate, mutate, caplog):
    event = first("azureml-model-registered.eventgrid.json")
    mutate(event)
    assert gate.call("azureml_events", decode(event)) is None  # returns normally: no redelivery
    assert gate.store.count() == 0 and "poison event" in caplog.text


def test_unknown_model_is_dropped_without_a_report(gate):
    event = first("azureml-model-registered.eventgrid.json")
    event["data"].update(ModelName=unique("nope"), ModelVersion=1)
    assert gate.call("azureml_events", decode(event)) is None and gate.store.count() == 0


def test_registry_unavailable_raises_so_event_grid_redelivers(gate, model):
    event = first("azureml-model-registered.eventgrid.json")
    event["data"].update(ModelName=model[0], ModelVersion=1)
    gate.proxy.always = Fault(status=503)
    with pytest.raises(RegistryUnavailable):
        gate.call("azureml_events", decode(event))
    assert gate.store.count() == 0
    gate.proxy.reset()
    gate.call("azureml_events", decode(event))
    assert gate.store.count() == 1


def test_ignored_event_types(gate):
    event = first("azureml-model-registered.eventgrid.json")
    event["eventType"] = "Microsoft.MachineLearningServices.DatasetDriftDetected"
    assert gate.call("azureml_events", decode(event)) is None and gate.store.count() == 0


def no_azure_credential(monkeypatch) -> None:
    for key in ("IDENTITY_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no Azure CLI either


def test_the_region_setting_is_only_the_fallback_when_the_workspace_cannot_be_asked(monkeypatch):
    # Asking the workspace for its mlFlowTrackingUri: tests/platforms/azureml/test_azureml_events.py
    no_azure_credential(monkeypatch)
    assert WorkspaceTrackingUris(" West Europe ")(WS) == f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{WS}"
    with pytest.raises(BadInput):
        WorkspaceTrackingUris("westeurope")("/subscriptions/x")
    with pytest.raises(ConfigurationError, match="no Azure credential configured"):
        WorkspaceTrackingUris()(WS)


def test_no_credential_and_no_region_raises_for_redelivery(gate, monkeypatch):
    no_azure_credential(monkeypatch)
    gate.use(azureml_tracking_uri=WorkspaceTrackingUris())  # the real resolver, as from the settings
    with pytest.raises(ConfigurationError):
        gate.call("azureml_events", decode(first("azureml-model-registered.eventgrid.json")))
