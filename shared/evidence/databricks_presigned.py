"""MLflow's own way to MLflow tracking artifacts on Databricks, for when the Files API is refused
or missing: list with MLflow's artifact listing APIs, download through a presigned URL that
``credentials-for-read`` (runs) or ``credentials-for-download`` (logged models) hands out.
This is what MLflow's Databricks artifact repository does
(mlflow/store/artifact/databricks_artifact_repo.py, databricks_artifact_repo_resources.py
``_Run`` / ``_LoggedModel``):

- runs: ``GET /api/2.0/mlflow/artifacts/list`` (run_id, path;
  https://docs.databricks.com/api/workspace/experiments/listartifacts) and
  ``POST /api/2.0/mlflow/artifacts/credentials-for-read`` (run_id, path[]);
- logged models: ``GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories``
  (artifact_directory_path) and ``POST /api/2.0/mlflow/logged-models/{model_id}/artifacts/credentials-for-download``
  (paths[]) (mlflow/protos/service.proto ``ListLoggedModelArtifacts``, databricks_artifacts.proto
  ``GetCredentialsForLoggedModelDownload``).

The presigned URL is read without the workspace's credentials (it carries its own signature and
expiry), on a session of its own, each request bounded by the check's deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import requests
from databricks.sdk import WorkspaceClient

from shared.errors import EvidenceUnreadable, NotFoundInRegistry, RegistryUnavailable
from shared.evidence.deadline import Deadline

HTTP_TIMEOUT = 15.0
# dbfs:/databricks/mlflow-tracking/<exp>/<run>/artifacts/<path> and .../<exp>/logged_models/<id>/artifacts/<path>
_TRACKING = re.compile(r"^dbfs:/databricks/mlflow-tracking/[^/]+/(logged_models/)?([^/]+)/artifacts(?:/(.*))?$")


@dataclass(frozen=True)
class TrackingPath:
    """An MLflow tracking location: the run or logged model, and the path below its artifact root."""

    logged_model: bool
    ident: str  # run id or logged model id
    path: str  # "" for the root

    def below(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}" if self.path else name


def tracking_path(location: str) -> TrackingPath | None:
    match = _TRACKING.match(location or "")
    if not match:
        return None
    logged, ident, path = match.groups()
    return TrackingPath(bool(logged), ident, (path or "").strip("/"))


def list_names(w: WorkspaceClient, where: TrackingPath) -> list[str]:
    """The names directly below ``where`` (directories end with ``/``), every page."""
    if where.logged_model:
        url = f"/api/2.0/mlflow/logged-models/{quote(where.ident, safe='')}/artifacts/directories"
        query = {"artifact_directory_path": where.path} if where.path else {}
    else:
        url, query = "/api/2.0/mlflow/artifacts/list", {"run_id": where.ident, **({"path": where.path} if where.path else {})}
    names, token = [], None
    while True:
        data = w.api_client.do("GET", url, query={**query, **({"page_token": token} if token else {})})
        files = data.get("files") or []
        for f in files:
            path = str(f.get("path") or "")
            if path == where.path and not f.get("is_dir"):  # the path is a file: nothing below it
                return []
            name = path.rstrip("/").rsplit("/", 1)[-1]
            names.append(name + ("/" if f.get("is_dir") else ""))
        token = data.get("next_page_token")
        if not files or not token:
            return sorted(names)


def read_text(w: WorkspaceClient, storage: requests.Session, where: TrackingPath, name: str, limit: int, *,
              deadline: Deadline, registry: str, location: str) -> bytes:
    """At most ``limit`` bytes of the file ``name`` below ``where``, through a presigned URL. A URL the
    storage refuses (expired, bad signature) is asked for once more; refused again, the file is
    unreadable evidence. Connection errors propagate (the backend translates them)."""
    path = where.below(name)
    status, body = _fetch(storage, *_credential(w, where, path), limit, deadline)
    if status in (401, 403):
        status, body = _fetch(storage, *_credential(w, where, path), limit, deadline)
    if status == 200:
        return body
    if status == 404:
        raise NotFoundInRegistry(f"artifacts at {location}/{name}: the storage has no such file")
    if status in (401, 403):
        raise EvidenceUnreadable(
            f"artifacts at {location}/{name}", f"the storage refused the presigned URL the workspace gave (HTTP {status}),"
            " twice", "check the workspace's storage credentials, or grant the identity the Files API on the experiment",
            location=location)
    raise RegistryUnavailable(registry, f"presigned download of {name}: HTTP {status}", status=status)


def _fetch(storage: requests.Session, signed: str, headers: dict[str, str], limit: int,
           deadline: Deadline) -> tuple[int, bytes]:
    deadline.check(_host(signed), "presigned download")
    with storage.get(signed, headers=headers, stream=True, timeout=deadline.timeout(HTTP_TIMEOUT)) as resp:
        return resp.status_code, resp.raw.read(limit, decode_content=True) if resp.status_code == 200 else b""


def _credential(w: WorkspaceClient, where: TrackingPath, path: str) -> tuple[str, dict[str, str]]:
    """The signed URI and the headers to send with it (ArtifactCredentialInfo)."""
    if where.logged_model:
        data = w.api_client.do(
            "POST", f"/api/2.0/mlflow/logged-models/{quote(where.ident, safe='')}/artifacts/credentials-for-download",
            body={"paths": [path]})
        infos = [c.get("credential_info") or {} for c in data.get("credentials") or []]
    else:
        data = w.api_client.do("POST", "/api/2.0/mlflow/artifacts/credentials-for-read",
                               body={"run_id": where.ident, "path": [path]})
        infos = data.get("credential_infos") or []
    if not infos or not infos[0].get("signed_uri"):
        raise ValueError("no credential in the answer")  # translated: no usable answer
    info = infos[0]
    return info["signed_uri"], {h["name"]: h.get("value", "") for h in info.get("headers") or [] if h.get("name")}


def _host(url: str) -> str:
    """Where a presigned URL points, without its signature (never shown)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
