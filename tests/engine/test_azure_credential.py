"""shared.azure_credential picks a credential from the environment and never probes IMDS."""

from __future__ import annotations

import pytest

from shared import azure_credential
from shared.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET",
                 "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `az` on PATH
    azure_credential._cache.clear()
    yield
    azure_credential._cache.clear()


def test_nothing_configured_is_one_clear_configuration_error():
    assert azure_credential.which() is None
    with pytest.raises(ConfigurationError) as info:
        azure_credential.credential()
    assert "no Azure credential configured" in str(info.value)
    assert info.value.retry and not info.value.transient and info.value.http_status == 503


def test_functions_host_identity_endpoint_means_managed_identity(monkeypatch):
    from azure.identity import ManagedIdentityCredential

    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "h")
    assert azure_credential.which() == "managed_identity"
    first = azure_credential.credential()
    assert isinstance(first, ManagedIdentityCredential)
    assert azure_credential.credential() is first  # one per process: the token cache is shared


def test_service_principal_and_cli(monkeypatch, tmp_path):
    from azure.identity import AzureCliCredential, EnvironmentCredential

    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s")
    assert isinstance(azure_credential.credential(), EnvironmentCredential)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    az = tmp_path / "az"
    az.write_text("#!/bin/sh\nexit 1\n")
    az.chmod(0o755)
    assert azure_credential.which() == "azure_cli"
    assert isinstance(azure_credential.credential(), AzureCliCredential)
