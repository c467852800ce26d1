"""Model artifacts in Azure Storage, read with azure-storage-blob from real Azurite: a version whose
source is an ``abfss://`` / ``wasbs://`` / ``https://`` location in a storage account is checked like
any other (its MLmodel, environment files and nested credential files seen); an account that
refuses the credential is EVD-008 naming it, never a retry; a missing container is EVD-006."""

from __future__ import annotations

import pytest

from shared.evidence import azure_storage
from tests.engine.conftest import rule_ids
from tests.support import azurite as azurite_support

MLMODEL = """artifact_path: model
flavors:
  python_function: {loader_module: mlflow.sklearn, python_version: 3.11.7}
signature:
  inputs: '[{"type": "double", "name": "tenure"}]'
  outputs: '[{"type": "long"}]'
"""


@pytest.fixture(scope="module")
def lake(azurite):
    """Container ``models`` in Azurite's account holding a model directory with a nested key file."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("models")
    if not container.exists():
        container.create_container()
    for name, text in {"churn/m/MLmodel": MLMODEL, "churn/m/requirements.txt": "scikit-learn==1.5.2\n",
                       "churn/m/code/train.py": "print('hi')\n", "churn/m/deploy/ssh/id_rsa": "not a real key\n"}.items():
        container.upload_blob(name, text.encode(), overwrite=True)
    return azurite


@pytest.fixture()
def storage_env(lake, monkeypatch, tmp_path):
    for name in ("IDENTITY_ENDPOINT", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")  # no Azure CLI
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", lake.connection_string)
    azure_storage._clients.clear()
    yield monkeypatch
    azure_storage._clients.clear()


ACCOUNT = azurite_support.ACCOUNT


@pytest.mark.parametrize("source", [
    f"wasbs://models@{ACCOUNT}.blob.core.windows.net/churn/m",
    f"abfss://models@{ACCOUNT}.dfs.core.windows.net/churn/m",
    f"https://{ACCOUNT}.blob.core.windows.net/models/churn/m/",
])
def test_artifacts_in_a_storage_account_are_read_like_any_others(storage_env, kit, check, source):
    trained = kit.model_version("churn-lake", style="orphan", source=source)
    report = check(trained)
    ids = rule_ids(report)
    # the model was read: signature, environment file and the nested key file all seen
    assert {"EVD-004", "EVD-005", "EVD-006", "EVD-008"}.isdisjoint(ids), report["findings"]
    assert "LIN-001" in ids  # no run: a real finding
    (sec,) = [f for f in report["findings"] if f["rule_id"] == "SEC-002"]
    assert sec["evidence"]["location"] == "model artifacts/deploy/ssh/id_rsa"


def test_an_account_refusing_the_credential_is_evd_008_naming_it(storage_env, lake, kit, check):
    storage_env.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       lake.connection_string.replace(azurite_support.ACCOUNT_KEY, "d3Jvbmcta2V5" * 7 + "AA=="))
    trained = kit.model_version("churn-lake", style="orphan", source=f"wasbs://models@{ACCOUNT}.blob.core.windows.net/churn/m")
    report = check(trained)
    assert rule_ids(report) >= {"EVD-008", "LIN-001"} and "EVD-006" not in rule_ids(report)
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "EVD-008"]
    assert f"storage account '{ACCOUNT}' refused access (HTTP 403" in finding["message"]
    assert "Storage Blob Data Reader" in finding["message"]
    assert "d3Jvbmcta2V5" not in str(report)  # the key is never echoed


def test_a_missing_container_is_confirmed_absent_evd_006(storage_env, kit, check):
    trained = kit.model_version("churn-lake", style="orphan",
                                source=f"wasbs://nothing-here@{ACCOUNT}.blob.core.windows.net/churn/m")
    ids = rule_ids(check(trained))
    assert "EVD-006" in ids and "EVD-008" not in ids
