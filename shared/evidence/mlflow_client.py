"""Registry access through the MLflow client, for the registries that need its authentication and
plugins: Databricks (``databricks``, ``databricks-uc``: databricks-sdk auth, Unity Catalog) and any
other scheme MLflow knows. Plain ``http(s)`` servers use :mod:`shared.evidence.rest` instead, which
does not import MLflow; Azure ML workspaces :mod:`shared.evidence.azureml`.

MLflow is imported when this backend is created, never at module import. The MLflow client bounds
its own requests with the ``MLFLOW_HTTP_REQUEST_*`` variables, which it reads from the environment:
:func:`apply_http_defaults` puts Evidence Gate's defaults (:data:`HTTP_DEFAULTS`) there once, before
MLflow's first use, for the variables the user has not set. The check's deadline is checked by the
RegistryClient before each call and bounds the Azure Storage reads."""

from __future__ import annotations

import functools
import os
import re
import tempfile

from shared.errors import BadInput, NotFoundInRegistry, RateLimited, RegistryUnavailable
from shared.evidence.model import DatasetRef, LoggedModelInfo, RegisteredModelEvidence, RunEvidence, VersionEvidence

# The MLflow client's own retry defaults (7 retries, backoff factor 2, 120 s timeout) can keep an
# event waiting for minutes. A webhook sender gives up long before that, so Evidence Gate retries
# briefly (honouring Retry-After) and then reports the registry unavailable so the sender
# redelivers. The MLflow client and the REST backend (shared.evidence.rest) read these standard
# MLflow variables, so users can still override them.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    # Evidence Gate reads one small MLmodel file per check: no multipart download, and so no
    # /server-info probe before each download. And no MLflow usage telemetry from a service.
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def http_setting(name: str) -> str:
    """One of :data:`HTTP_DEFAULTS`: the environment's value, else Evidence Gate's default."""
    return os.environ.get(name) or HTTP_DEFAULTS[name]


@functools.cache
def apply_http_defaults() -> None:
    """Evidence Gate's defaults into the environment, where the MLflow client reads them, for the
    variables not set: once per process, before MLflow is first used."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


# MLflow API error codes, as both backends receive them
NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
BAD_INPUT_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "MALFORMED_REQUEST", "INVALID_STATE"}


class MlflowBackend:
    name = "mlflow"

    def __init__(self, shown_uri: str, tracking_uri: str, registry_uri: str):
        self.uri = shown_uri
        self._tracking_uri = tracking_uri
        apply_http_defaults()
        try:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
            # Resolving the stores validates the URI scheme now rather than mid-check.
            self._client._tracking_client.store  # noqa: B018
            self._client._get_registry_client().store  # noqa: B018
        except Exception as exc:  # the MLflow client raises many types for a bad URI
            raise BadInput(f"cannot use registry URI '{shown_uri}': {first_line(exc)}") from None

    def translate(self, what: str, exc: Exception) -> Exception:
        return translate(self.uri, what, exc)

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str, *, deadline) -> VersionEvidence:
        return version_from_entity(self._client.get_model_version(name, version))

    def get_registered_model(self, name: str, *, deadline) -> RegisteredModelEvidence:
        return registered_model_from_entity(self._client.get_registered_model(name))

    def search_model_versions(self, filter_string: str | None, page_token: str | None, max_results: int, *, deadline):
        page = self._client.search_model_versions(filter_string, max_results=max_results,
                                                  order_by=["last_updated_timestamp DESC"], page_token=page_token)
        return [(version_from_entity(mv), mv.last_updated_timestamp or 0) for mv in page], page.token or None

    def search_registered_models(self, page_token: str | None, max_results: int, *, deadline):
        page = self._client.search_registered_models(max_results=max_results, order_by=["last_updated_timestamp DESC"],
                                                     page_token=page_token)
        return [(registered_model_from_entity(rm), rm.last_updated_timestamp or 0) for rm in page], page.token or None

    # -- tracking --------------------------------------------------------------------------
    def get_run(self, run_id: str, *, deadline) -> RunEvidence:
        run = self._client.get_run(run_id)
        info, data = run.info, run.data
        datasets = []
        for dataset_input in getattr(run.inputs, "dataset_inputs", None) or []:
            ds = dataset_input.dataset
            context = next((t.value for t in dataset_input.tags or [] if t.key == "mlflow.data.context"), None)
            datasets.append(DatasetRef(name=ds.name, digest=ds.digest, source=ds.source, context=context))
        return RunEvidence(
            run_id=info.run_id,
            status=info.status,
            lifecycle_stage=info.lifecycle_stage,
            experiment_id=str(info.experiment_id) if info.experiment_id is not None else None,
            start_time=info.start_time,
            end_time=info.end_time,
            user=info.user_id or None,
            artifact_uri=info.artifact_uri,
            params=dict(data.params),
            metrics=dict(data.metrics),
            tags=dict(data.tags),
            datasets=datasets,
        )

    def search_experiments(self, page_token: str | None, max_results: int, *, deadline):
        page = self._client.search_experiments(max_results=max_results, page_token=page_token)
        return [e.experiment_id for e in page], page.token or None

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int, *, deadline) -> list[str]:
        runs = self._client.search_runs(experiment_ids=experiment_ids, filter_string=filter_string, max_results=max_results)
        return [r.info.run_id for r in runs]

    def get_logged_model(self, model_id: str, *, deadline) -> LoggedModelInfo:
        lm = self._client.get_logged_model(model_id)
        return LoggedModelInfo(model_id=lm.model_id, artifact_location=lm.artifact_location, source_run_id=lm.source_run_id)

    # -- artifacts -------------------------------------------------------------------------
    def list_artifacts(self, location: str, *, deadline) -> list[str]:
        from shared.evidence import artifact_stores

        return artifact_stores.list_artifacts(location, self._tracking_uri, deadline=deadline)

    def read_artifact_text(self, location: str, name: str, limit: int, *, deadline) -> str:
        from shared.evidence import artifact_stores

        return artifact_stores.read_artifact_text(location, name, self._tracking_uri, limit, deadline=deadline)


# Artifact access through MLflow's artifact repositories: every store MLflow supports (DBFS, Unity
# Catalog volumes, Azure Blob, S3, local paths, ...). Also the REST backend's way to artifacts that
# live outside an MLflow server.
def _artifact_repo(location: str, tracking_uri: str):
    apply_http_defaults()
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

    uri = add_databricks_profile_info_to_artifact_uri(location, tracking_uri)
    return get_artifact_repository(uri, tracking_uri=tracking_uri)


def list_artifacts(location: str, tracking_uri: str) -> list[str]:
    """Names at the root of ``location``; directories end with ``/`` (one request)."""
    infos = _artifact_repo(location, tracking_uri).list_artifacts()
    return sorted(os.path.basename(i.path.rstrip("/")) + ("/" if i.is_dir else "") for i in infos)


def read_artifact_text(location: str, name: str, tracking_uri: str, limit: int) -> str:
    """The text of one small artifact file known to exist (one request)."""
    repo = _artifact_repo(location, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="evidence-gate-") as tmp:
        local = os.path.join(tmp, os.path.basename(name))
        # _download_file is the one-request primitive every ArtifactRepository implements;
        # download_artifacts() would list the path first to see whether it is a directory.
        repo._download_file(name, local)
        with open(local, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)


def registered_model_from_entity(rm) -> RegisteredModelEvidence:
    return RegisteredModelEvidence(
        name=rm.name,
        description=rm.description or None,
        tags=dict(rm.tags or {}),
        aliases={alias: str(v) for alias, v in (rm.aliases or {}).items()},
        latest_versions={mv.current_stage or "None": str(mv.version) for mv in (rm.latest_versions or [])},
    )


def version_from_entity(mv) -> VersionEvidence:
    stage = mv.current_stage if mv.current_stage not in (None, "", "None") else None
    return VersionEvidence(
        name=mv.name,
        version=str(mv.version),
        status=mv.status or "READY",
        source=mv.source or None,
        run_id=mv.run_id or None,
        model_id=getattr(mv, "model_id", None) or None,
        user_id=mv.user_id or None,
        description=mv.description or None,
        stage=stage,
        status_message=mv.status_message or None,
        creation_timestamp=mv.creation_timestamp,
        tags=dict(mv.tags or {}),
        aliases=list(mv.aliases or []),
    )


def translate(uri: str, what: str, exc: Exception) -> Exception:
    """The MLflow client's error as ours: not found (evidence), bad input, or an outage. The MLflow
    client reports an exhausted retry budget only in its text ("too many 429 error responses")."""
    reason = _outage_reason(exc)
    status = _TOO_MANY.search(str(exc))
    return api_error(uri, what, getattr(exc, "error_code", None), first_line(exc), reason,
                     status=int(status.group(1)) if status else None)


def api_error(uri: str, what: str, code: str | None, message: str, outage_reason: str, *,
              status: int | None = None) -> Exception:
    """An MLflow API error as ours (both backends): the error code says "does not exist"
    (evidence) or "malformed" (bad input); 429 is :class:`RateLimited`; anything else is an
    outage, for ``outage_reason``."""
    if code in NOT_FOUND_CODES:
        return NotFoundInRegistry(f"{what}: {message}")
    if code in BAD_INPUT_CODES:
        return BadInput(f"{what} was refused by {uri}: {message}")
    if code == "ENDPOINT_NOT_FOUND":
        return BadInput(f"{uri} does not serve the MLflow API ({what} answered 404)")
    if status == 429:
        return RateLimited(uri, f"{what}: rate limited (HTTP 429)")
    return RegistryUnavailable(uri, f"{what}: {outage_reason}", status=status)


def connection_reason(text: str) -> str | None:
    """``timed out`` / ``connection refused`` / ``connection reset`` from an HTTP library's error
    text (which embeds the URL, so it is never shown itself), or None."""
    if "timeout" in text.lower() or "timed out" in text.lower():
        return "timed out"
    if "NewConnectionError" in text or "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "ConnectionResetError" in text:
        return "connection reset"
    return None


_WS = re.compile(r"\s+")
_TOO_MANY = re.compile(r"too many (\d{3}) error responses")


def _outage_reason(exc: Exception) -> str:
    """A short, credential-free reason for an outage (the MLflow client's text embeds whole URLs)."""
    text = str(exc)
    status = _TOO_MANY.search(text)
    if status:
        return "rate limited (HTTP 429)" if status.group(1) == "429" else f"HTTP {status.group(1)}"
    connection = connection_reason(text)
    if connection:
        return connection
    if "Databricks credential configuration failed" in text:
        return ("Databricks credentials not configured: set DATABRICKS_HOST with DATABRICKS_CLIENT_ID and"
                " DATABRICKS_CLIENT_SECRET (or a managed identity / profile databricks-sdk can use)")
    code = getattr(exc, "error_code", None)
    if code and code != "INTERNAL_ERROR":
        return code
    return "no usable answer"


def first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return _WS.sub(" ", line)[:300]
