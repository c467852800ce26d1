"""One client for every MLflow-compatible registry: open-source servers (``http(s)://``),
Databricks (``databricks`` / ``databricks-uc``) and Azure ML (``azureml://``, via the
azureml-mlflow plugin).

It is the transport seam of the engine: every registry request goes through one of its methods,
which counts it and translates the MLflow client's errors into ours:

- "does not exist"                      -> :class:`NotFoundInRegistry` (evidence, becomes a finding)
- unreachable / timeout / 5xx / 429     -> :class:`~shared.errors.RegistryUnavailable` (retry)
- a malformed name / version / URI      -> :class:`~shared.errors.BadInput`
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shared.errors import BadInput, RegistryUnavailable
from shared.evidence.model import DatasetRef, RegisteredModelEvidence, RunEvidence, VersionEvidence

log = logging.getLogger(__name__)

# The MLflow client's own retry defaults (7 retries, backoff factor 2) can keep an event waiting
# for minutes. A webhook sender gives up long before that, so Evidence Gate retries briefly
# (Retry-After is honoured by the MLflow client) and then reports the registry unavailable so the
# sender redelivers. Users can still override these through the standard MLflow variables.
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

_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
_BAD_INPUT_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "MALFORMED_REQUEST", "INVALID_STATE"}


# Registries rate-limit by API class; Databricks, per workspace: Model Registry about 40 requests/s,
# MLflow tracking about 120/s, run and experiment search about 7/s. Every request is one of these.
REGISTRY, TRACKING, SEARCH = "registry", "tracking", "search"
API_CLASSES = (REGISTRY, TRACKING, SEARCH)


class NotFoundInRegistry(Exception):
    """The registry answered that the entity does not exist (evidence, not an outage)."""


@dataclass(frozen=True)
class LoggedModelInfo:
    model_id: str
    artifact_location: str | None
    source_run_id: str | None


def display_uri(uri: str) -> str:
    """The registry URI without any user:password part, safe to show and store."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return uri


def _split_registry_uri(uri: str) -> tuple[str, str]:
    """(tracking URI, registry URI) for a registry named the way DESIGN.md names them."""
    if uri == "databricks-uc" or uri.startswith("databricks-uc://"):
        return uri.replace("databricks-uc", "databricks", 1), uri
    return uri, uri


class RegistryClient:
    """Read-only access to one registry. Thread-safe; counts the requests it makes."""

    def __init__(self, uri: str, *, before_request: Callable[[str], None] | None = None):
        """``before_request(api)`` runs before every request, with the request's API class (one of
        :data:`API_CLASSES`): the reconcile sweep's rate limiter."""
        if not uri or not isinstance(uri, str):
            raise BadInput("a registry URI is required (set MLFLOW_TRACKING_URI or pass --tracking-uri)")
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.uri = display_uri(uri)
        self._raw_uri = uri
        self._tracking_uri, self._registry_uri = _split_registry_uri(uri)
        self._lock = threading.Lock()
        self._before_request = before_request
        self.requests = 0
        try:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self._tracking_uri, registry_uri=self._registry_uri)
            # Resolving the stores validates the URI scheme now rather than mid-check.
            self._client._tracking_client.store  # noqa: B018
            self._client._get_registry_client().store  # noqa: B018
        except BadInput:
            raise
        except Exception as exc:  # the MLflow client raises many types for a bad URI
            raise BadInput(f"cannot use registry URI '{self.uri}': {_first_line(exc)}") from None

    # -- plumbing --------------------------------------------------------------------------
    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def _call(self, api: str, what: str, fn, *args, **kwargs):
        if self._before_request is not None:
            self._before_request(api)
        self._count()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._translate(what, exc) from None

    def _translate(self, what: str, exc: Exception) -> Exception:
        code = getattr(exc, "error_code", None)
        if code in _NOT_FOUND_CODES:
            return NotFoundInRegistry(f"{what}: {_first_line(exc)}")
        if code in _BAD_INPUT_CODES:
            return BadInput(f"{what} was refused by {self.uri}: {_first_line(exc)}")
        if code == "ENDPOINT_NOT_FOUND":
            return BadInput(f"{self.uri} does not serve the MLflow API ({what} answered 404)")
        reason = _outage_reason(exc)
        log.info("registry %s unavailable during %s: %s", self.uri, what, reason)
        return RegistryUnavailable(self.uri, f"{what}: {reason}")

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str) -> VersionEvidence:
        mv = self._call(REGISTRY, f"get model version {name}/{version}", self._client.get_model_version, name, str(version))
        return version_from_entity(mv)

    def get_registered_model(self, name: str) -> RegisteredModelEvidence:
        rm = self._call(REGISTRY, f"get registered model {name}", self._client.get_registered_model, name)
        return RegisteredModelEvidence(
            name=rm.name,
            description=rm.description or None,
            tags=dict(rm.tags or {}),
            aliases={alias: str(v) for alias, v in (rm.aliases or {}).items()},
            latest_versions={mv.current_stage or "None": str(mv.version) for mv in (rm.latest_versions or [])},
        )

    def search_model_versions(self, filter_string: str | None = None, page_token: str | None = None):
        """One page of (version, last-updated epoch ms), newest first, and the next page token."""
        page = self._call(
            REGISTRY,
            "search model versions",
            self._client.search_model_versions,
            filter_string,
            max_results=200,
            order_by=["last_updated_timestamp DESC"],
            page_token=page_token,
        )
        return [(version_from_entity(mv), mv.last_updated_timestamp or 0) for mv in page], page.token

    # -- tracking --------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunEvidence:
        """The run, or a RunEvidence with ``found=False`` when the registry confirms it missing."""
        try:
            run = self._call(TRACKING, f"get run {run_id}", self._client.get_run, run_id)
        except NotFoundInRegistry:
            return RunEvidence(run_id=run_id, found=False)
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

    def experiment_ids(self) -> list[str]:
        ids, token = [], None
        while True:
            page = self._call(SEARCH, "search experiments", self._client.search_experiments, max_results=1000, page_token=token)
            ids += [e.experiment_id for e in page]
            token = page.token
            if not token:
                return ids

    def search_runs_by_tag(self, key: str, value: str) -> list[str]:
        """Run ids, in every active experiment, whose tag ``key`` equals ``value`` (100 experiments a request)."""
        safe = value.replace("'", "")
        experiments = self.experiment_ids()
        found: list[str] = []
        for i in range(0, len(experiments), 100):
            runs = self._call(SEARCH, f"search runs {key}={safe}", self._client.search_runs, experiment_ids=experiments[i:i + 100],
                              filter_string=f"tags.`{key}` = '{safe}'", max_results=100)
            found += [r.info.run_id for r in runs]
        return found

    def search_registered_models(self, page_token: str | None = None) -> tuple[list[tuple[str, int]], str | None]:
        """One page of (registered model name, last-updated epoch ms), most recently updated first."""
        page = self._call(REGISTRY, "search registered models", self._client.search_registered_models, max_results=200,
                          order_by=["last_updated_timestamp DESC"], page_token=page_token)
        return [(rm.name, rm.last_updated_timestamp or 0) for rm in page], page.token

    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None:
        try:
            lm = self._call(TRACKING, f"get logged model {model_id}", self._client.get_logged_model, model_id)
        except NotFoundInRegistry:
            return None
        return LoggedModelInfo(model_id=lm.model_id, artifact_location=lm.artifact_location, source_run_id=lm.source_run_id)

    # -- artifacts -------------------------------------------------------------------------
    def _artifact_repo(self, location: str):
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

        uri = add_databricks_profile_info_to_artifact_uri(location, self._tracking_uri)
        return get_artifact_repository(uri, tracking_uri=self._tracking_uri)

    def list_artifacts(self, location: str) -> list[str]:
        """Names at the root of ``location``; directories end with ``/``. Empty when nothing is there."""
        repo = self._artifact_repo(location)
        try:
            infos = self._call(TRACKING, f"list artifacts at {location}", repo.list_artifacts)
        except NotFoundInRegistry:
            return []
        return sorted(os.path.basename(i.path.rstrip("/")) + ("/" if i.is_dir else "") for i in infos)

    def read_artifact_text(self, location: str, name: str, limit: int = 1 << 20) -> str:
        """The text of one small artifact file known to exist (one request)."""
        repo = self._artifact_repo(location)
        with tempfile.TemporaryDirectory(prefix="evidence-gate-") as tmp:
            local = os.path.join(tmp, os.path.basename(name))
            # _download_file is the one-request primitive every ArtifactRepository implements;
            # download_artifacts() would list the path first to see whether it is a directory.
            self._call(TRACKING, f"download {name} from {location}", repo._download_file, name, local)
            with open(local, encoding="utf-8", errors="replace") as fh:
                return fh.read(limit)


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


_WS = re.compile(r"\s+")
_TOO_MANY = re.compile(r"too many (\d{3}) error responses")


def _outage_reason(exc: Exception) -> str:
    """A short, credential-free reason for an outage (the MLflow client's text embeds whole URLs)."""
    text = str(exc)
    status = _TOO_MANY.search(text)
    if status:
        return "rate limited (HTTP 429)" if status.group(1) == "429" else f"HTTP {status.group(1)}"
    if "timeout" in text.lower() or "timed out" in text.lower():
        return "timed out"
    if "NewConnectionError" in text or "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "ConnectionResetError" in text:
        return "connection reset"
    code = getattr(exc, "error_code", None)
    if code and code != "INTERNAL_ERROR":
        return code
    return "no usable answer"


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return _WS.sub(" ", line)[:300]
