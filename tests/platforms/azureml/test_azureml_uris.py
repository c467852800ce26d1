"""Which URIs name an Azure ML workspace, and the pure mappings of the backend (no network)."""

from __future__ import annotations

import pytest

from shared.errors import BadInput, EvidenceUnreadable
from shared.evidence import azureml
from shared.evidence.model import DatasetRef
from shared.evidence.registry import RegistryClient

RESOURCE_ID = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/providers/"
               "Microsoft.MachineLearningServices/workspaces/ws-churn")
TRACKING = f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{RESOURCE_ID}"


@pytest.mark.parametrize("uri,served", [(TRACKING, True), (RESOURCE_ID, True), (RESOURCE_ID + "/", True),
                                        ("http://127.0.0.1:5000", False), ("databricks", False),
                                        (RESOURCE_ID + "/models/m", False)])
def test_which_uris_name_a_workspace(uri, served):
    assert azureml.serves(uri) is served


@pytest.mark.parametrize("uri", ["azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/x",
                                 "azureml:///mlflow/v1.0" + RESOURCE_ID])
def test_a_malformed_workspace_uri_is_bad_input_naming_the_expected_form(uri):
    with pytest.raises(BadInput, match="mlFlowTrackingUri"):
        RegistryClient(uri)


REGISTRY_ID = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/providers/"
               "Microsoft.MachineLearningServices/registries/shared-models")


@pytest.mark.parametrize("uri", ["azureml://registries/shared-models", "azureml://registries/shared-models/models/m",
                                 REGISTRY_ID])
def test_an_azure_ml_registry_is_bad_input_saying_registries_are_not_read(uri):
    """Registries are not covered: one plain line naming the registry and what to check instead."""
    assert azureml.serves(uri)
    with pytest.raises(BadInput) as caught:
        RegistryClient(uri)
    message = str(caught.value)
    assert "'shared-models' is an Azure ML registry" in message and "does not read Azure ML registries" in message
    assert "check the version in that workspace" in message and "\n" not in message


def test_files_in_a_registry_are_unreadable_evidence_never_a_finding_about_the_model():
    location = "azureml://registries/shared-models/models/churn/versions/3"
    with pytest.raises(EvidenceUnreadable, match="registry 'shared-models'"):
        azureml.AzureMLBackend(TRACKING, TRACKING).list_artifacts(location)


def test_the_mlflow_endpoint_is_https_v2_on_the_tracking_uri_host():
    assert azureml.mlflow_base(TRACKING) == f"https://westeurope.api.azureml.ms/mlflow/v2.0{RESOURCE_ID}"
    ref = azureml.workspace_ref(TRACKING, TRACKING)
    assert (ref.subscription, ref.resource_group, ref.name, ref.resource_id) == (
        "00000000-1111-2222-3333-444444444444", "rg-ml", "ws-churn", RESOURCE_ID)
    assert azureml.workspace_ref(RESOURCE_ID, RESOURCE_ID).tracking_uri is None


class Input:
    def __init__(self, path):
        self.path = path


class NodeInput:
    """What azure-ai-ml hands over for a job input: the Input or the literal as ``_data``."""

    def __init__(self, data):
        self._data = data


@pytest.mark.parametrize("value,expected", [
    (NodeInput(Input("azureml:churn-train:3")), DatasetRef("churn-train", "3", "azureml:churn-train:3", "job_input")),
    (NodeInput(Input("azureml:churn-train@latest")),
     DatasetRef("churn-train", "latest", "azureml:churn-train@latest", "job_input")),
    (NodeInput(Input("azureml://datastores/lake/paths/churn/")),
     DatasetRef("training_data", "", "azureml://datastores/lake/paths/churn/", "job_input")),
    (NodeInput("0.1"), None),
    (NodeInput(3), None),
])
def test_job_inputs_that_are_data_become_datasets(value, expected):
    assert azureml.dataset_from_input("training_data", value) == expected


@pytest.mark.parametrize("cloud,expected", [(None, {}), ("AzureChinaCloud", {"cloud": "AzureChinaCloud"})])
def test_a_built_in_cloud_is_handed_to_the_client_without_fetching_anything(cloud, expected, monkeypatch, caplog):
    """Azure's public and sovereign clouds are built into azure-ai-ml: no ARM metadata is fetched
    (the metadata URL, if set, points at a closed loopback port: a fetch would log azure-ai-ml's
    'unable to load cloud metadata' warning)."""
    monkeypatch.setenv("ARM_CLOUD_METADATA_URL", "https://127.0.0.1:9/metadata/endpoints?api-version=2019-05-01")
    if cloud is None:
        monkeypatch.delenv("ARM_CLOUD_METADATA_URL")
        monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    else:
        monkeypatch.setenv("AZUREML_CURRENT_CLOUD", cloud)
    with caplog.at_level("WARNING"):
        assert azureml.cloud_arguments() == expected
    assert "unable to load cloud metadata" not in caplog.text
