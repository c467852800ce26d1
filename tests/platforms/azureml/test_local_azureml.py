"""The local Azure ML itself, through the real SDK stacks: it is only worth testing against if it
is as strict as Azure ML where Evidence Gate depends on it."""

from __future__ import annotations

import os

import pytest
import requests
from azure.ai.ml import MLClient
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential

from tests.platforms.azureml.conftest import WORKSPACE
from tests.platforms.azureml.local_azureml import RESOURCE_GROUP, SUBSCRIPTION, Fault


@pytest.fixture(scope="module")
def trained(kit):
    return kit.model_version("aml-local-clean")


def client() -> MLClient:
    return MLClient(ManagedIdentityCredential(), SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)


def test_azure_ai_ml_reads_workspace_model_and_job_through_its_standard_configuration(aml_env, trained):
    ml = client()
    ws = ml.workspaces.get(WORKSPACE)
    assert ws.mlflow_tracking_uri.startswith(f"azureml://{aml_env.netloc}/mlflow/")
    model = ml.models.get(trained.model, trained.version)
    assert model.job_name == trained.run_id and model.stage == "Development"
    assert model.path.endswith(f"/datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{trained.run_id}/model")
    job = ml.jobs.get(trained.run_id)
    assert job.type == "command" and job.properties["azureml.git.commit"]
    assert job.creation_context.created_by == "carol@contoso.com"
    assert aml_env.count("/msi/token") == 1  # one token, cached by the credential


def test_the_managed_identity_endpoint_needs_the_identity_header(aml_env):
    assert requests.get(aml_env.identity_endpoint, params={"api-version": "2019-08-01", "resource": "x"}).status_code == 401


def test_arm_refuses_a_request_without_a_token_or_with_a_foreign_one(aml_env, workspace):
    url = f"{aml_env.base}{workspace.resource_id}?api-version=2024-10-01"
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer forged"}).json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_missing_model_version_is_the_sdk_not_found(aml_env):
    with pytest.raises(ResourceNotFoundError):
        client().models.get("no-such-model", "1")


def test_an_injected_401_reaches_the_sdk_as_an_authentication_error(aml_env, trained):
    aml_env.inject("/models/", Fault(status=401))
    with pytest.raises(ClientAuthenticationError):
        client().models.get(trained.model, trained.version)


def test_logged_models_is_404_with_an_empty_body_and_a_job_run_has_no_client_source_tags(aml_env, workspace, trained):
    token = ManagedIdentityCredential().get_token(aml_env.resource_manager + ".default").token
    base = workspace.tracking_uri.replace("azureml://", "https://").replace("/mlflow/v1.0", "/mlflow/v2.0")
    auth = {"Authorization": f"Bearer {token}"}
    missing = requests.get(f"{base}/api/2.0/mlflow/logged-models/{trained.model_id}", headers=auth)
    assert missing.status_code == 404 and missing.content == b""
    run = requests.get(f"{base}/api/2.0/mlflow/runs/get", params={"run_id": trained.run_id}, headers=auth).json()["run"]
    assert not [t for t in run["data"]["tags"] if t["key"].startswith("mlflow.source.")]
    assert run["info"]["artifact_uri"].endswith(f"/runs/{trained.run_id}/artifacts")


def test_artifacts_come_with_sas_urls_that_only_work_as_signed(aml_env, workspace, trained):
    token = ManagedIdentityCredential().get_token(aml_env.resource_manager + ".default").token
    url = (f"{aml_env.base}/artifact/v2.0{workspace.resource_id}/artifacts/ExperimentRun/dcid.{trained.run_id}"
           "/prefix/contentinfo")
    listing = requests.get(url, params={"path": "model"}, headers={"Authorization": f"Bearer {token}"}).json()["value"]
    mlmodel = next(item for item in listing if item["path"] == "model/MLmodel")
    assert "flavors:" in requests.get(mlmodel["contentUri"]).text
    tampered = mlmodel["contentUri"].replace("sig=", "sig=0")
    assert requests.get(tampered).status_code == 403
    assert os.environ["REQUESTS_CA_BUNDLE"]  # trusted through the CA bundle, TLS checks on
