"""One client for every MLflow-compatible registry: open-source servers (``http(s)://``),
Databricks (``databricks`` / ``databricks-uc``) and Azure ML (``azureml://`` tracking URIs and
workspace resource ids).

It is the transport seam of the engine: every registry request goes through one of its methods,
which counts it, tells the rate limiter its API class, and turns the backend's errors into ours:

- "does not exist"                      -> :class:`~shared.errors.NotFoundInRegistry` (evidence, becomes a finding)
- unreachable / timeout / 5xx / 429     -> :class:`~shared.errors.RegistryUnavailable` (retry)
- a malformed name / version / URI      -> :class:`~shared.errors.BadInput`

Three backends answer the same methods with the same evidence objects: plain ``http(s)`` servers
are read over the MLflow REST API (:mod:`shared.evidence.rest`, no MLflow import: a cold start
stays short); Azure ML workspaces (``azureml://`` tracking URIs and workspace resource ids) through
azure-ai-ml and the workspace's MLflow REST endpoint (:mod:`shared.evidence.azureml`); every other
registry through the MLflow client (:mod:`shared.evidence.mlflow_client`, for databricks-sdk
authentication and Unity Catalog).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from shared.errors import BadInput, NotFoundInRegistry, RegistryUnavailable
from shared.evidence import azureml, rest
from shared.evidence.model import LoggedModelInfo, RegisteredModelEvidence, RunEvidence, VersionEvidence

log = logging.getLogger(__name__)

# The MLflow client's own retry defaults (7 retries, backoff factor 2, 120 s timeout) can keep an
# event waiting for minutes. A webhook sender gives up long before that, so Evidence Gate retries
# briefly (honouring Retry-After) and then reports the registry unavailable so the sender
# redelivers. Both backends read these standard MLflow variables, so users can still override them.
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

# Registries rate-limit by API class; Databricks, per workspace: Model Registry about 40 requests/s,
# MLflow tracking about 120/s, run and experiment search about 7/s. Every request is one of these.
REGISTRY, TRACKING, SEARCH = "registry", "tracking", "search"
API_CLASSES = (REGISTRY, TRACKING, SEARCH)
PAGE_SIZE = 200


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

    def __init__(self, uri: str, *, before_request: Callable[[str], None] | None = None, backend: str | None = None):
        """``before_request(api)`` runs before every request, with the request's API class (one of
        :data:`API_CLASSES`): the reconcile sweep's rate limiter. ``backend``: ``rest``, ``mlflow``
        or ``azureml`` to choose instead of by URI (``rest`` serves http(s) URIs only)."""
        if not uri or not isinstance(uri, str):
            raise BadInput("a registry URI is required (set MLFLOW_TRACKING_URI or pass --tracking-uri)")
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.uri = display_uri(uri)
        self._lock = threading.Lock()
        self._before_request = before_request
        self.requests = 0
        if backend not in (None, "rest", "mlflow", "azureml"):
            raise ValueError(f"unknown backend {backend!r}")
        if backend == "azureml" or (backend is None and azureml.serves(uri)):
            self._backend = azureml.AzureMLBackend(uri, self.uri)
        elif backend == "rest" or (backend is None and rest.serves(uri)):
            self._backend = rest.RestBackend(uri, self.uri)
        else:
            from shared.evidence.mlflow_client import MlflowBackend

            self._backend = MlflowBackend(self.uri, *_split_registry_uri(uri))

    @property
    def backend(self) -> str:
        """``rest``, ``azureml`` or ``mlflow``: which backend reads this registry."""
        return self._backend.name

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
        translated = self._backend.translate(what, exc)
        if isinstance(translated, RegistryUnavailable):
            log.info("registry %s unavailable during %s: %s", self.uri, what, translated.reason)
        return translated

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str) -> VersionEvidence:
        return self._call(REGISTRY, f"get model version {name}/{version}", self._backend.get_model_version, name, str(version))

    def get_registered_model(self, name: str) -> RegisteredModelEvidence:
        return self._call(REGISTRY, f"get registered model {name}", self._backend.get_registered_model, name)

    def search_model_versions(self, filter_string: str | None = None, page_token: str | None = None):
        """One page of (version, last-updated epoch ms), newest first, and the next page token."""
        return self._call(REGISTRY, "search model versions", self._backend.search_model_versions, filter_string,
                          page_token, PAGE_SIZE)

    def search_registered_models(self, page_token: str | None = None) -> tuple[list[tuple[str, int]], str | None]:
        """One page of (registered model name, last-updated epoch ms), most recently updated first."""
        return self._call(REGISTRY, "search registered models", self._backend.search_registered_models, page_token,
                          PAGE_SIZE)

    # -- tracking --------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunEvidence:
        """The run, or a RunEvidence with ``found=False`` when the registry confirms it missing."""
        try:
            return self._call(TRACKING, f"get run {run_id}", self._backend.get_run, run_id)
        except NotFoundInRegistry:
            return RunEvidence(run_id=run_id, found=False)

    def experiment_ids(self) -> list[str]:
        ids, token = [], None
        while True:
            page, token = self._call(SEARCH, "search experiments", self._backend.search_experiments, token, 1000)
            ids += page
            if not token:
                return ids

    def search_runs_by_tag(self, key: str, value: str) -> list[str]:
        """Run ids, in every active experiment, whose tag ``key`` equals ``value`` (100 experiments a request)."""
        safe = value.replace("'", "")
        experiments = self.experiment_ids()
        found: list[str] = []
        for i in range(0, len(experiments), 100):
            found += self._call(SEARCH, f"search runs {key}={safe}", self._backend.search_runs, experiments[i:i + 100],
                                f"tags.`{key}` = '{safe}'", 100)
        return found

    def get_logged_model(self, model_id: str) -> LoggedModelInfo | None:
        try:
            return self._call(TRACKING, f"get logged model {model_id}", self._backend.get_logged_model, model_id)
        except NotFoundInRegistry:
            return None

    # -- artifacts -------------------------------------------------------------------------
    def list_artifacts(self, location: str) -> list[str]:
        """Names at the root of ``location``; directories end with ``/``. Empty when nothing is there."""
        try:
            return self._call(TRACKING, f"list artifacts at {location}", self._backend.list_artifacts, location)
        except NotFoundInRegistry:
            return []

    def read_artifact_text(self, location: str, name: str, limit: int = 1 << 20) -> str:
        """The text of one small artifact file just listed (one request)."""
        what = f"download {name} from {location}"
        try:
            return self._call(TRACKING, what, self._backend.read_artifact_text, location, name, limit)
        except NotFoundInRegistry:  # listed a moment ago: it is changing, look again later
            raise RegistryUnavailable(self.uri, f"{what}: listed but gone") from None
