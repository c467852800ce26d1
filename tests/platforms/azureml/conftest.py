"""The local Azure ML (local_azureml.py) in front of the session's real MLflow server, its TLS
certificate made by the suite (trustme) and trusted through the CA bundle settings, and the
environment a function app in that cloud has (set per test, restored after)."""

from __future__ import annotations

import pytest

from tests.platforms.azureml.local_azureml import CLOUD, LocalAzureML, certificates

WORKSPACE = "ws-churn"


@pytest.fixture(scope="session")
def aml_tls(tmp_path_factory):
    """(CA bundle, server certificate chain, key) files for 127.0.0.1."""
    return certificates(str(tmp_path_factory.mktemp("aml-tls")))


@pytest.fixture(scope="session")
def local_azureml(aml_tls, mlflow_server):
    aml = LocalAzureML(aml_tls[1], aml_tls[2]).start()
    aml.add_workspace(WORKSPACE, mlflow_server.uri)
    yield aml
    aml.stop()


@pytest.fixture()
def aml_env(local_azureml, aml_tls, monkeypatch):
    """The environment of a function app with a managed identity in the local Azure ML's cloud."""
    for key, value in local_azureml.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", CLOUD)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", aml_tls[0])
    monkeypatch.setenv("SSL_CERT_FILE", aml_tls[0])
    for key in ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(key, raising=False)
    local_azureml.reset()
    return local_azureml


@pytest.fixture()
def workspace(aml_env):
    return aml_env.workspaces[WORKSPACE]
