"""The one way Evidence Gate picks an Azure credential: explicitly, never by probing.

``DefaultAzureCredential`` tries the instance-metadata address (169.254.169.254) and, on a
developer machine, interactive or shared-cache logins. A headless service must do neither, so the
credential is chosen from what the environment says, in this order:

1. ``IDENTITY_ENDPOINT`` (+ ``IDENTITY_HEADER``): the managed identity as the Functions / App
   Service host exposes it -> ``ManagedIdentityCredential`` (``AZURE_CLIENT_ID`` or the
   connection's ``__clientId`` picks a user-assigned identity);
2. ``AZURE_FEDERATED_TOKEN_FILE`` (+ ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``): workload identity;
3. ``AZURE_CLIENT_SECRET`` or ``AZURE_CLIENT_CERTIFICATE_PATH`` (+ ids): a service principal
   (``EnvironmentCredential``);
4. the Azure CLI (``az`` on ``PATH``), for a developer machine;
5. otherwise :class:`~shared.errors.ConfigurationError` "no Azure credential configured".

azure-identity is imported only when a credential is actually needed.
"""

from __future__ import annotations

import os
import shutil
import threading

from shared.errors import ConfigurationError

NO_CREDENTIAL = ("no Azure credential configured: run in Azure with a managed identity (IDENTITY_ENDPOINT), set"
                 " AZURE_CLIENT_ID/AZURE_TENANT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or sign in"
                 " with the Azure CLI (az login)")

_cache: dict[tuple, object] = {}
_lock = threading.Lock()


def which() -> str | None:
    """The kind of credential the environment configures (``managed_identity``, ``workload_identity``,
    ``service_principal``, ``azure_cli``), or None."""
    env = os.environ
    if env.get("IDENTITY_ENDPOINT"):
        return "managed_identity"
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        return "workload_identity"
    if env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        return "service_principal"
    if shutil.which("az"):
        return "azure_cli"
    return None


def credential(client_id: str | None = None):
    """The credential for this environment (one per kind and client id per process, so its token
    cache is shared), or ConfigurationError when none is configured."""
    kind = which()
    if kind is None:
        raise ConfigurationError(NO_CREDENTIAL)
    client_id = client_id or os.environ.get("AZURE_CLIENT_ID") or None
    key = (kind, client_id)
    with _lock:
        if key not in _cache:
            _cache[key] = _build(kind, client_id)
        return _cache[key]


def _build(kind: str, client_id: str | None):
    from azure import identity

    if kind == "managed_identity":
        return identity.ManagedIdentityCredential(client_id=client_id) if client_id else identity.ManagedIdentityCredential()
    if kind == "workload_identity":
        return identity.WorkloadIdentityCredential(client_id=client_id) if client_id else identity.WorkloadIdentityCredential()
    if kind == "service_principal":
        return identity.EnvironmentCredential()
    return identity.AzureCliCredential()
