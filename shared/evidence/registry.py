"""One client for every MLflow-compatible registry: open-source servers (``http(s)://``),
Databricks (``databricks`` / ``databricks-uc``) and Azure ML (``azureml://`` tracking URIs and
workspace resource ids).

It is the transport seam of the engine: every registry request goes through one of its methods,
which checks the check's deadline, counts it, tells the rate limiter its API class, and turns the
backend's errors into ours (:mod:`shared.errors`):

- "does not exist"                      -> :class:`~shared.errors.NotFoundInRegistry` (evidence, becomes a finding)
- unreachable / timeout / 5xx           -> :class:`~shared.errors.RegistryUnavailable` (retry)
- 429 after the retries                 -> :class:`~shared.errors.RateLimited` (retry)
- the check's deadline passed           -> :class:`~shared.errors.DeadlineExceeded` (retry)
- artifacts it may not or cannot read   -> :class:`~shared.errors.EvidenceUnreadable` (EVD-008, not retried)
- refused credentials on the API        -> :class:`~shared.errors.ConfigurationError` (what to set)
- a malformed name / version / URI      -> :class:`~shared.errors.BadInput`

Every backend method receives the check's :class:`~shared.evidence.deadline.Deadline` and bounds
its timeouts and retries by it.

Four backends answer the same methods with the same evidence objects: plain ``http(s)`` servers
are read over the MLflow REST API (:mod:`shared.evidence.rest`, no MLflow import: a cold start
stays short); Databricks (``databricks``, ``databricks-uc``, ``://<profile>``) on databricks-sdk
(:mod:`shared.evidence.databricks`, no MLflow import either); Azure ML workspaces (``azureml://``
tracking URIs and workspace resource ids) through azure-ai-ml and the workspace's MLflow REST
endpoint (:mod:`shared.evidence.azureml`); any other registry MLflow knows through the MLflow
client (:mod:`shared.evidence.mlflow_client`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from shared import settings
from shared.errors import BadInput, EvidenceGateError, NotFoundInRegistry, RegistryUnavailable
from shared.evidence import azureml, rest
from shared.evidence.deadline import DEFAULT_CHECK_SECONDS, Deadline
from shared.evidence.model import LoggedModelInfo, RegisteredModelEvidence, RunEvidence, VersionEvidence

log = logging.getLogger("evidence_gate.registry")

# Registries rate-limit by API class; Databricks, per workspace: Model Registry about 40 requests/s,
# MLflow tracking about 120/s, run and experiment search about 7/s. Every request is one of these.
REGISTRY, TRACKING, SEARCH = "registry", "tracking", "search"
API_CLASSES = (REGISTRY, TRACKING, SEARCH)
PAGE_SIZE = 200


_DEFAULT_PORTS = {"http": 80, "https": 443}


def display_uri(uri: str) -> str:
    """The registry's one identity, safe to show and store: without any ``user:password@``, and
    normalised so that every spelling of one registry is one history (GOV-005, GOV-006, DEP-001,
    the previous alias holder): scheme and host in lower case, the default port (``:80`` /
    ``:443``) dropped, no trailing slash. ``http://HOST:5000/`` and ``http://host:5000`` are one
    registry. Other schemes (``databricks://profile``, ``azureml://...``) lose only the user info and
    the trailing slash: their names are case-sensitive."""
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme in _DEFAULT_PORTS and parts.hostname:
        try:
            port = parts.port
        except ValueError:  # not a port number: the authority as written, minus any user info
            return urlunsplit((scheme, parts.netloc.rsplit("@", 1)[-1], parts.path.rstrip("/"), parts.query, ""))
        host = parts.hostname  # urlsplit lower-cases it
        if ":" in host:
            host = f"[{host}]"  # IPv6
        if port and port != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{port}"
        return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))
    if parts.username or parts.password:
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), parts.query, ""))
    return uri.strip().rstrip("/") if parts.path.endswith("/") else uri.strip()


def _split_registry_uri(uri: str) -> tuple[str, str]:
    """(tracking URI, registry URI) for a registry named the way DESIGN.md names them."""
    if uri == "databricks-uc" or uri.startswith("databricks-uc://"):
        return uri.replace("databricks-uc", "databricks", 1), uri
    return uri, uri


def check_deadline_seconds() -> float:
    """``EVIDENCE_GATE_CHECK_DEADLINE_SECONDS``: the deadline of one event-driven or CLI check."""
    return seconds_setting("EVIDENCE_GATE_CHECK_DEADLINE_SECONDS", DEFAULT_CHECK_SECONDS)


def seconds_setting(name: str, default: float) -> float:
    """A setting that is a positive number of seconds (``default`` when unset); BadInput otherwise."""
    raw = settings.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise BadInput(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise BadInput(f"{name} must be above 0 seconds")
    return value


def _databricks_uri(uri: str) -> bool:
    """``databricks``, ``databricks-uc`` and their ``://<profile>`` forms (the Databricks backend)."""
    return uri.split("://", 1)[0] in ("databricks", "databricks-uc") and "/" not in uri.partition("://")[2]


class RegistryClient:
    """Read-only access to one registry. Thread-safe; counts the requests it makes (``requests``:
    HTTP requests on Databricks, calls elsewhere)."""

    def __init__(self, uri: str, *, before_request: Callable[[str], None] | None = None, backend: str | None = None,
                 deadline: Deadline | float | None = None):
        """``before_request(api)`` runs before every request, with the request's API class (one of
        :data:`API_CLASSES`): the reconcile sweep's rate limiter. On Databricks it runs before each
        HTTP request the SDK sends (its retries and the pages of a listing included); on the other
        backends once per call. ``backend``: ``rest``,
        ``databricks``, ``azureml`` or ``mlflow`` to choose instead of by URI (``rest`` serves http(s)
        URIs only, ``databricks`` the Databricks ones). ``deadline``: the check's deadline (seconds
        from now, or a Deadline; default ``EVIDENCE_GATE_CHECK_DEADLINE_SECONDS``): one client serves
        one check."""
        if not uri or not isinstance(uri, str):
            raise BadInput("a registry URI is required (set MLFLOW_TRACKING_URI or pass --tracking-uri)")
        self.uri = display_uri(uri)
        if not isinstance(deadline, Deadline):
            deadline = Deadline(deadline or check_deadline_seconds())
        self.deadline = deadline
        self._lock = threading.Lock()
        self._before_request = before_request
        self.requests = 0
        if backend not in (None, "rest", "mlflow", "databricks", "azureml"):
            raise ValueError(f"unknown backend {backend!r}")
        if backend == "azureml" or (backend is None and azureml.serves(uri)):
            self._backend = azureml.AzureMLBackend(uri, self.uri)
        elif backend == "rest" or (backend is None and rest.serves(uri)):
            self._backend = rest.RestBackend(uri, self.uri)
        elif backend == "databricks" or (backend is None and _databricks_uri(uri)):
            from shared.evidence.databricks import DatabricksBackend  # databricks-sdk, imported only here

            self._backend = DatabricksBackend(uri, self.uri, uc_schemas=settings.get("EVIDENCE_GATE_UC_SCHEMAS"),
                                              workspaces=settings.get("EVIDENCE_GATE_DATABRICKS_WORKSPACES"))
        else:
            from shared.evidence.mlflow_client import MlflowBackend

            self._backend = MlflowBackend(self.uri, *_split_registry_uri(uri))

    @property
    def backend(self) -> str:
        """``rest``, ``databricks``, ``azureml`` or ``mlflow``: which backend reads this registry."""
        return self._backend.name

    # -- plumbing --------------------------------------------------------------------------
    def _announce(self, api: str) -> None:
        """One HTTP request of class ``api`` is about to be sent: the rate limiter, then the count."""
        if self._before_request is not None:
            self._before_request(api)
        with self._lock:
            self.requests += 1

    def _call(self, api: str, what: str, fn, *args, **kwargs):
        self.deadline.check(self.uri, what)
        if getattr(self._backend, "tells_each_request", False):
            # the backend tells each HTTP request it sends, retries and pages included (Databricks:
            # one call can be several requests)
            kwargs["on_request"] = functools.partial(self._announce, api)
        else:
            self._announce(api)
        try:
            return fn(*args, deadline=self.deadline, **kwargs)
        except EvidenceGateError as exc:  # the backend knew what it was
            raise self._logged(what, exc) from None
        except Exception as exc:
            raise self._logged(what, self._backend.translate(what, exc)) from None

    def _logged(self, what: str, exc: Exception) -> Exception:
        if isinstance(exc, RegistryUnavailable):
            log.info("registry %s unavailable during %s: %s", self.uri, what, exc.reason)
        return exc

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str) -> VersionEvidence:
        return self._call(REGISTRY, f"get model version {name}/{version}", self._backend.get_model_version, name, str(version))

    def get_registered_model(self, name: str) -> RegisteredModelEvidence:
        return self._call(REGISTRY, f"get registered model {name}", self._backend.get_registered_model, name)

    def search_model_versions(self, filter_string: str | None = None, page_token: str | None = None, *,
                              updated_since: int | None = None):
        """One page of (version, last-updated epoch ms), newest first, and the next page token.

        ``updated_since`` (epoch ms): a registry that lists versions model by model (Unity Catalog)
        lists only the models updated since then; the others order all versions and ignore it."""
        hint = {"updated_since": updated_since} if getattr(self._backend, "lists_by_model", False) else {}
        return self._call(REGISTRY, "search model versions", self._backend.search_model_versions, filter_string,
                          page_token, PAGE_SIZE, **hint)

    def search_registered_models(self, page_token: str | None = None
                                 ) -> tuple[list[tuple[RegisteredModelEvidence, int]], str | None]:
        """One page of (registered model, last-updated epoch ms), most recently updated first; each
        record as complete as ``get_registered_model``'s (aliases and latest versions included), or
        only the model's name where the registry's listing is not (Databricks)."""
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

    def job_task_runs(self, job_run_id: str) -> list[str]:
        """The task run ids of a multi-task job run (Databricks Jobs ``runs/get``), where MLflow
        tags each run with its task's run id; [] for a registry without jobs."""
        fetch = getattr(self._backend, "job_task_runs", None)
        if fetch is None:
            return []
        return self._call(TRACKING, f"get job run {job_run_id}", fetch, job_run_id)

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
