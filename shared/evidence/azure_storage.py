"""Model and run artifacts kept in Azure Storage, read with azure-storage-blob.

Azure ML and Databricks users keep models in storage accounts: ADLS Gen2
(``abfss://<container>@<account>.dfs.core.windows.net/<path>``), Blob storage
(``wasbs://<container>@<account>.blob.core.windows.net/<path>``) or plain HTTPS URLs
(``https://<account>.blob|dfs.core.windows.net/<container>/<path>``). An ADLS Gen2 account also
serves the Blob API, so all of them are read through the Blob endpoint.

Credentials, per account:

- ``AZURE_STORAGE_CONNECTION_STRING`` when its ``AccountName`` is the location's account (the
  variable MLflow's Azure artifact repository reads; also how Azurite is reached locally);
- otherwise the identity (:mod:`shared.azure_credential`: the Function App's managed identity,
  which needs *Storage Blob Data Reader* on the account).

What it cannot read is :class:`~shared.errors.EvidenceUnreadable` naming the account and what to
grant (EVD-008), never a retry loop; an unreachable account is transient
(:class:`StorageUnavailable`); a container or blob that does not exist is
:class:`~shared.errors.NotFoundInRegistry`.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

from shared import azure_credential
from shared.errors import ConfigurationError, EvidenceUnreadable, NotFoundInRegistry, TransientError
from shared.evidence.deadline import Deadline

_FS_URI = re.compile(r"^(?P<scheme>abfss?|wasbs?)://(?P<container>[^@/]+)@(?P<account>[a-z0-9]{3,24})\.(?:dfs|blob)\.(?P<suffix>[^/]+?)(?:/(?P<path>.*))?$", re.I)
_HTTPS_URI = re.compile(r"^https://(?P<account>[a-z0-9]{3,24})\.(?:dfs|blob)\.(?P<suffix>core\.[^/]+)/(?P<container>[^/]+)(?:/(?P<path>.*))?$", re.I)
RETRIES = 2  # azure-core's own retries of one request (its default of 3 with backoff could outlive the deadline)


class StorageUnavailable(TransientError):
    """The storage account could not be reached, throttled, or answered 5xx: retry later."""

    code = "storage_unavailable"
    telemetry_kind = "storage_unavailable"

    def __init__(self, account: str, reason: str):
        self.account = account
        self.reason = reason
        super().__init__(f"storage account '{account}' is unavailable ({reason}); retry later")


@dataclass(frozen=True)
class BlobLocation:
    account: str
    suffix: str  # endpoint suffix, e.g. core.windows.net
    container: str
    path: str  # without leading or trailing "/"

    @property
    def account_url(self) -> str:
        return f"https://{self.account}.blob.{self.suffix}"


def parse(location: str) -> BlobLocation | None:
    """The storage location of an artifact URI, or None when it is not Azure Storage."""
    match = _FS_URI.match(location) or _HTTPS_URI.match(location)
    if not match:
        return None
    return BlobLocation(match["account"].lower(), match["suffix"].rstrip("/"), match["container"],
                        (match["path"] or "").strip("/"))


def serves(location: str) -> bool:
    return parse(location) is not None


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _connection_string_for(account: str) -> str | None:
    value = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or ""
    parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
    return value if parts.get("AccountName", "").lower() == account else None


def _service(loc: BlobLocation, what: str):
    """One BlobServiceClient per account and credential per process."""
    from azure.storage.blob import BlobServiceClient

    connection_string = _connection_string_for(loc.account)
    try:
        credential = None if connection_string else azure_credential.credential()
    except ConfigurationError as exc:
        raise EvidenceUnreadable(what, f"storage account '{loc.account}' needs a credential",
                                 f"{exc}; or set AZURE_STORAGE_CONNECTION_STRING for account '{loc.account}'",
                                 location=f"{loc.account_url}/{loc.container}/{loc.path}") from None
    key = (loc.account_url, connection_string, id(credential))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if connection_string:
                client = BlobServiceClient.from_connection_string(connection_string, retry_total=RETRIES)
            else:
                client = BlobServiceClient(loc.account_url, credential=credential, retry_total=RETRIES)
            _clients[key] = client
        return client


def _timeouts(deadline: Deadline) -> dict:
    return {"connection_timeout": deadline.timeout(10), "read_timeout": deadline.timeout(30)}


def list_artifacts(location: str, *, deadline: Deadline) -> list[str]:
    """Names directly under ``location``; directories end with ``/`` (one request a page)."""
    loc = parse(location)
    what = f"artifacts at {location}"
    container = _service(loc, what).get_container_client(loc.container)
    prefix = f"{loc.path}/" if loc.path else ""
    try:
        names = set()
        for item in container.walk_blobs(name_starts_with=prefix, delimiter="/", **_timeouts(deadline)):
            name = item.name[len(prefix):]
            if name:
                names.add(name if not name.endswith("/") else name.rstrip("/") + "/")
        return sorted(names)
    except Exception as exc:
        raise _translate(exc, loc, what, location) from None


def read_artifact_text(location: str, name: str, limit: int, *, deadline: Deadline) -> str:
    """The text of one small file under ``location`` (one request); over ``limit`` bytes is unreadable."""
    from shared.evidence.artifact_stores import too_large

    loc = parse(location)
    what = f"{name} at {location}"
    blob = _service(loc, what).get_blob_client(loc.container, f"{loc.path}/{name}".strip("/"))
    try:
        data = blob.download_blob(offset=0, length=limit + 1, **_timeouts(deadline)).readall()
    except Exception as exc:
        raise _translate(exc, loc, what, location) from None
    if len(data) > limit:
        raise too_large(name, location, limit)
    return data.decode("utf-8", errors="replace")


def _translate(exc: Exception, loc: BlobLocation, what: str, location: str) -> Exception:
    from azure.core import exceptions as azure_errors

    if isinstance(exc, azure_errors.ResourceNotFoundError):
        return NotFoundInRegistry(f"{what}: not found in storage account '{loc.account}'")
    if isinstance(exc, azure_errors.ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # no HTTP status: the credential itself could not get a token
        return EvidenceUnreadable(what, f"no token for storage account '{loc.account}' ({_first_line(exc)})",
                                  "check the identity Evidence Gate runs as (AZURE_CLIENT_ID) and that it may sign in",
                                  location=location)
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        code = getattr(exc, "error_code", None) or ""
        return EvidenceUnreadable(
            what, f"storage account '{loc.account}' refused access (HTTP {status}{', ' + str(code) if code else ''})",
            f"grant Evidence Gate's identity 'Storage Blob Data Reader' on storage account '{loc.account}' (container"
            f" '{loc.container}') and allow it through the account's firewall", location=location)
    if isinstance(exc, (azure_errors.ServiceRequestError, azure_errors.ServiceResponseError)):
        return StorageUnavailable(loc.account, "connection failed or timed out")
    if status is not None and (status == 429 or status >= 500):
        return StorageUnavailable(loc.account, f"HTTP {status}")
    if status is not None:
        return EvidenceUnreadable(what, f"storage account '{loc.account}' answered HTTP {status}",
                                  f"check the artifact location's container '{loc.container}'", location=location)
    raise exc


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]
