"""Registry access for Databricks, on databricks-sdk: the workspace Model Registry (``databricks``,
``databricks://<profile>``) and Unity Catalog (``databricks-uc``, ``databricks-uc://<profile>``).
No MLflow import on this path.

Credentials: a personal access token (``DATABRICKS_HOST`` + ``DATABRICKS_TOKEN``) or a service
principal with OAuth M2M (``DATABRICKS_HOST`` + ``DATABRICKS_CLIENT_ID`` +
``DATABRICKS_CLIENT_SECRET``), from the environment or a ``~/.databrickscfg`` profile. One SDK
client per registry per process (its connections and OAuth token are reused by every check).

Bounded time: every request, retry wait (the SDK honours ``Retry-After``), OIDC discovery and
token request is bounded by the check's :class:`~shared.evidence.deadline.Deadline`; when it
passes, :class:`~shared.errors.DeadlineExceeded` (or :class:`~shared.errors.RateLimited` when
the registry kept answering 429). The host-metadata lookup databricks-sdk makes when the client
is created (``/.well-known/databricks-config``, best effort) gets at most
:data:`HOST_METADATA_SECONDS`.

Counted requests: each method takes ``on_request`` and calls it before every HTTP request it
sends to the workspace (the SDK's retries and the pages of a listing included): the reconcile
sweep's rate limiter and the report's ``registry_requests`` count real requests, not calls.

Endpoints (each method cites the page or MLflow store file it follows):

- workspace registry: SDK ``model_registry`` (``/api/2.0/mlflow/model-versions/get``,
  ``/api/2.0/mlflow/databricks/registered-models/get``), search over the documented REST paths;
- Unity Catalog: MLflow's UC registry paths ``/api/2.0/mlflow/unity-catalog/...`` (the UC REST
  API 2.1 types carry no tags and no logged-model id), the SDK's ``registered_models`` for the
  owner field and for listing models; version search takes a ``name=`` filter and no ``order_by``;
- tracking: SDK ``experiments`` (runs, logged models); experiment and run search over the
  documented REST paths (one page a request);
- artifacts: the Files API (SDK ``files``) at ``/WorkspaceInternal/Mlflow/Artifacts/...``, where
  Databricks serves ``dbfs:/databricks/mlflow-tracking/...`` (and ``/Volumes/...``);
- jobs: SDK ``jobs.get_run`` for a job run's ``git_source`` commit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as dbx_errors
from databricks.sdk.clock import Clock
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsStrategy
from requests.adapters import HTTPAdapter

from shared.errors import (
    BadInput,
    ConfigurationError,
    DeadlineExceeded,
    EvidenceGateError,
    EvidenceUnreadable,
    NotFoundInRegistry,
    RateLimited,
    RegistryUnavailable,
)
from shared.evidence import azure_storage, databricks_presigned, databricks_scope, databricks_workspaces
from shared.evidence.deadline import DEFAULT_CHECK_SECONDS, Deadline
from shared.evidence.model import (
    DatasetRef,
    DeploymentJob,
    LoggedModelInfo,
    RegisteredModelEvidence,
    RunEvidence,
    VersionEvidence,
)

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 15.0  # seconds, one request at most (less when the deadline is nearer)
HOST_METADATA_SECONDS = 2  # the SDK's best-effort /.well-known/databricks-config lookup, once per process
JOB_TAGS = ("mlflow.databricks.jobID", "mlflow.databricks.jobRunID")
JOB_RUN_TAG = "mlflow.databricks.jobRunID"
GIT_TAGS = ("mlflow.source.git.commit", "mlflow.databricks.gitRepoCommit")
TRACKING_ARTIFACTS = re.compile(r"^dbfs:/databricks/mlflow-tracking/([^/]+)/(logged_models/)?([^/]+)(/.*)?$")
FILES_ROOT = "/WorkspaceInternal/Mlflow/Artifacts"
FILES_API = "the Databricks Files API"
MLFLOW_ARTIFACTS_API = "MLflow's artifact API (after the Files API refused)"
MISSING_CREDENTIALS = ("Databricks credentials not configured: set DATABRICKS_HOST with DATABRICKS_TOKEN, or with"
                       " DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (OAuth M2M), or name a ~/.databrickscfg"
                       " profile (databricks://<profile>)")


# -- the deadline and request hook of the current call, per thread ---------------------------
_CURRENT = threading.local()
OnRequest = Callable[[], None]


class _OutOfTime(Exception):
    """The deadline leaves no time for the next request or retry wait; ``last``: the error that
    asked for the retry (a 429, a timeout, a refused connection), if any."""

    def __init__(self, last: BaseException | None):
        super().__init__("deadline passed")
        self.last = last


def _deadline() -> Deadline | None:
    return getattr(_CURRENT, "deadline", None)


def _announcing(headers: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    """The SDK's header factory, telling the current call's ``on_request`` first. databricks-sdk
    makes every API request through one ``requests.Session`` whose ``auth`` asks the header factory
    for fresh headers (``_base_client.py`` ``_BaseClient._authenticate``), once for each request it
    sends: every retry of ``retried(_perform)`` and every page of a listing. So this is told of each
    real HTTP request, before it is sent (the rate limiter may wait here; the deadline is checked
    after, by the adapter)."""

    def factory() -> dict[str, str]:
        hook = getattr(_CURRENT, "on_request", None)
        if hook is not None:
            hook()
        return headers()

    return factory


class _DeadlineClock(Clock):
    """The SDK's retry loop (databricks/sdk/retries.py ``retried``) sleeps through this clock
    between attempts, inside its ``except`` block: a wait the deadline does not allow ends the
    retries with the error that asked for it."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        deadline = _deadline()
        if deadline is not None and not deadline.allows_wait(seconds):
            raise _OutOfTime(sys.exc_info()[1])
        time.sleep(seconds)


class _BoundedAdapter(HTTPAdapter):
    """Every request's timeout: :data:`HTTP_TIMEOUT` or what the deadline leaves, if less."""

    def send(self, request, timeout=None, **kwargs):
        deadline = _deadline()
        if deadline is not None:
            if deadline.expired():
                raise _OutOfTime(None)
            timeout = deadline.timeout(HTTP_TIMEOUT)
        return super().send(request, timeout=timeout, **kwargs)


class _PatOrM2M(CredentialsStrategy):
    """A PAT (``token``) or OAuth M2M (``client_id`` / ``client_secret``), whichever the config
    has. databricks-sdk's own M2M provider fetches its OIDC discovery document with a 300 s retry
    budget and its token without any timeout; this one bounds both by the deadline and caches the
    token until a minute before it expires."""

    def auth_type(self) -> str:
        return "pat-or-oauth-m2m"

    def __call__(self, cfg: Config):
        if not cfg.host:
            raise ValueError(MISSING_CREDENTIALS)
        if cfg.token:
            header = {"Authorization": f"Bearer {cfg.token}"}
            return _announcing(lambda: header)
        if cfg.client_id and cfg.client_secret:
            return _announcing(_M2MToken(cfg).headers)
        raise ValueError(MISSING_CREDENTIALS)


class _M2MToken:
    def __init__(self, cfg: Config):
        self._host = cfg.host.rstrip("/")
        # host metadata (resolved by Config) names the OIDC root; else the workspace's own
        # (databricks-sdk oauth.py get_workspace_endpoints)
        self._discovery = cfg.discovery_url or f"{self._host}/oidc/.well-known/oauth-authorization-server"
        self._auth = (cfg.client_id, cfg.client_secret)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._endpoint: str | None = None
        self._session = requests.Session()

    def _timeout(self) -> float:
        deadline = _deadline()
        if deadline is None:
            return HTTP_TIMEOUT
        if deadline.expired():
            raise _OutOfTime(None)
        return deadline.timeout(HTTP_TIMEOUT)

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.time() > self._expires - 60:
                self._refresh()
            return {"Authorization": f"Bearer {self._token}"}

    def _refresh(self) -> None:
        try:
            if self._endpoint is None:
                # RFC 8414 metadata (https://docs.databricks.com/aws/en/dev-tools/auth/oauth-m2m)
                resp = self._session.get(self._discovery, timeout=self._timeout())
                resp.raise_for_status()
                self._endpoint = resp.json()["token_endpoint"]
            # client_credentials grant, client id and secret as HTTP Basic, scope all-apis
            # (databricks-sdk oauth.py ClientCredentials / retrieve_token)
            resp = self._session.post(self._endpoint, data={"grant_type": "client_credentials", "scope": "all-apis"},
                                      auth=self._auth, timeout=self._timeout())
        except requests.RequestException as exc:
            raise RegistryUnavailable(self._host, f"OAuth token: {_connection_reason(exc)}") from None
        except (ValueError, KeyError):
            raise RegistryUnavailable(self._host, "OAuth discovery: no usable answer") from None
        if resp.status_code in (400, 401, 403):
            raise ConfigurationError(f"Databricks refused the OAuth client credentials of DATABRICKS_CLIENT_ID"
                                     f" (HTTP {resp.status_code}): check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET")
        if resp.status_code != 200:
            raise RegistryUnavailable(self._host, f"OAuth token: HTTP {resp.status_code}", status=resp.status_code)
        data = resp.json()
        self._token = data["access_token"]
        self._expires = time.time() + float(data.get("expires_in") or 300)


# -- one SDK client per registry per process ---------------------------------------------------
_CLOCK = _DeadlineClock()
_CLIENTS: dict[tuple, WorkspaceClient] = {}
_CLIENTS_LOCK = threading.Lock()


def _identity(profile: str | None, host: str | None) -> tuple:
    """What selects a workspace and its credentials (secrets only as digests)."""
    env = os.environ.get

    def digest(name: str) -> str | None:
        value = env(name)
        return hashlib.sha256(value.encode()).hexdigest() if value else None

    return (profile, host or env("DATABRICKS_HOST"), env("DATABRICKS_CONFIG_FILE"), env("DATABRICKS_CLIENT_ID"),
            digest("DATABRICKS_TOKEN"), digest("DATABRICKS_CLIENT_SECRET"))


def workspace_client(profile: str | None, host: str | None = None) -> WorkspaceClient:
    """The process's client of a workspace: a profile's, or the environment's (``host``: another
    workspace with the environment's credentials)."""
    key = _identity(profile, host)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            return client
        deadline = _deadline()
        try:
            # disable_experimental_files_api_client: files.download is one GET /api/2.0/fs/files on this
            # client's session. The SDK's newer download first asks for a presigned URL and reads it on
            # a session of its own, which neither the deadline nor the request hook would see.
            cfg = Config(profile=profile or None, host=host or None, credentials_strategy=_PatOrM2M(), clock=_CLOCK,
                         disable_experimental_files_api_client=True, retry_timeout_seconds=HOST_METADATA_SECONDS,
                         http_timeout_seconds=min(HTTP_TIMEOUT, deadline.remaining()) if deadline else HTTP_TIMEOUT)
        except ValueError as exc:
            text = str(exc)
            if MISSING_CREDENTIALS in text or "cannot configure default credentials" in text:
                raise ConfigurationError(MISSING_CREDENTIALS) from None
            raise ConfigurationError(f"Databricks configuration is unusable: {text.splitlines()[0][:300]}") from None
        # Requests are bounded by the deadline clock and adapter; the SDK's own budget stays wide.
        cfg.retry_timeout_seconds = 300
        cfg.http_timeout_seconds = HTTP_TIMEOUT
        client = WorkspaceClient(config=cfg)
        adapter = _BoundedAdapter(pool_connections=4, pool_maxsize=32)
        session = client.api_client._api_client._session  # the SDK's one requests.Session (pinned 0.156.0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _CLIENTS[key] = client
        return client


# -- the backend -------------------------------------------------------------------------------
@dataclass
class _Foreign:
    workspace: str


class DatabricksBackend:
    name = "databricks"
    lists_by_model = True  # Unity Catalog: search_model_versions takes updated_since (registry.py)
    tells_each_request = True  # every method calls on_request before each HTTP request (registry.py)

    def __init__(self, uri: str, shown_uri: str, *, uc_schemas: str | None = None, workspaces: str | None = None):
        """``uc_schemas``: the Unity Catalog schemas and catalogs a listing covers (the value of
        ``EVIDENCE_GATE_UC_SCHEMAS``, read when listing: :mod:`shared.evidence.databricks_scope`).
        ``workspaces``: the other workspaces a version's run may be read in (the value of
        ``EVIDENCE_GATE_DATABRICKS_WORKSPACES``: :mod:`shared.evidence.databricks_workspaces`)."""
        kind, _, profile = uri.partition("://")
        if kind not in ("databricks", "databricks-uc") or "/" in profile:
            raise BadInput(f"cannot use registry URI '{shown_uri}': a Databricks registry is databricks,"
                           " databricks-uc, databricks://<profile> or databricks-uc://<profile>")
        self.uri = shown_uri
        self.unity_catalog = kind == "databricks-uc"
        self._profile = profile or None
        self._uc_schemas = uc_schemas
        self._workspaces = workspaces
        self._model_runs: dict[str, str] = {}  # logged model id -> its run id, from UC versions seen
        self._storage = requests.Session()  # presigned artifact URLs (databricks_presigned), no workspace credentials
        self._run_workspaces: dict[str, str] = {}  # run id -> workspace id, from UC versions seen
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------------
    @contextmanager
    def _bounded(self, deadline: Deadline | None, what: str, on_request: OnRequest | None):
        """The workspace's client, with ``deadline`` bounding every request and retry wait made
        here and ``on_request`` told of each HTTP request to the workspace (the rate limiter and
        request count of :class:`~shared.evidence.registry.RegistryClient`)."""
        deadline = deadline or Deadline(DEFAULT_CHECK_SECONDS)
        deadline.check(self.uri, what)
        before = _deadline(), getattr(_CURRENT, "on_request", None)
        _CURRENT.deadline, _CURRENT.on_request = deadline, on_request
        try:
            yield workspace_client(self._profile)
        except _OutOfTime as exc:
            raise self._out_of_time(what, exc, deadline) from None
        finally:
            _CURRENT.deadline, _CURRENT.on_request = before

    def _out_of_time(self, what: str, exc: _OutOfTime, deadline: Deadline) -> Exception:
        """The error that asked for the retry the deadline did not allow (a 429, a 5xx, a refused
        connection), or DeadlineExceeded when there was none."""
        last = exc.last
        if isinstance(last, (dbx_errors.DatabricksError, requests.RequestException)):
            return self.translate(what, last)
        return DeadlineExceeded(self.uri, what, deadline.seconds)

    def translate(self, what: str, exc: Exception) -> Exception:
        """An SDK or HTTP error as ours (errors this module raised itself pass through)."""
        if isinstance(exc, EvidenceGateError):
            return exc
        if isinstance(exc, TimeoutError) and exc.__cause__ is not None:  # the SDK's retry budget ran out
            exc = exc.__cause__
        if isinstance(exc, dbx_errors.DatabricksError):
            return self._api_error(what, exc)
        if isinstance(exc, requests.RequestException):
            return RegistryUnavailable(self.uri, f"{what}: {_connection_reason(exc)}")
        if isinstance(exc, (ValueError, KeyError, TypeError, AttributeError)):  # an answer we cannot read
            return RegistryUnavailable(self.uri, f"{what}: no usable answer")
        return exc

    def _api_error(self, what: str, exc: dbx_errors.DatabricksError) -> Exception:
        code = exc.error_code or ""
        message = _first_line(exc)
        if isinstance(exc, dbx_errors.NotFound):
            if code == "ENDPOINT_NOT_FOUND":
                return BadInput(f"{self.uri} does not serve this API ({what} answered 404 ENDPOINT_NOT_FOUND)")
            return NotFoundInRegistry(f"{what}: {message}")
        if isinstance(exc, dbx_errors.BadRequest):
            return BadInput(f"{what} was refused by {self.uri}: {message}")
        if isinstance(exc, dbx_errors.Unauthenticated):
            return ConfigurationError(f"{what}: Databricks refused the credentials (HTTP 401 {code}): check"
                                      " DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET")
        if isinstance(exc, dbx_errors.PermissionDenied):
            return ConfigurationError(f"{what}: the Databricks identity lacks a permission (HTTP 403 {code}): grant it"
                                      " USE CATALOG, USE SCHEMA and EXECUTE on the model (Unity Catalog) or CAN READ"
                                      " on the model and its experiment (workspace)")
        if isinstance(exc, dbx_errors.TooManyRequests):
            return RateLimited(self.uri, f"{what}: rate limited (HTTP 429)", retry_after=exc.retry_after_secs)
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), None)
        return RegistryUnavailable(self.uri, f"{what}: {code or 'HTTP error'}" + (f" (HTTP {status})" if status else ""),
                                   status=status)

    def _uc_name(self, name: str) -> str:
        if len(name.split(".")) != 3 or not all(name.split(".")):
            raise BadInput(f"'{name}' is not a Unity Catalog model name: use catalog.schema.model")
        return name

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str, *, deadline: Deadline | None = None,
                          on_request: OnRequest | None = None) -> VersionEvidence:
        what = f"get model version {name}/{version}"
        with self._bounded(deadline, what, on_request) as w:
            if self.unity_catalog:
                # mlflow/store/_unity_catalog/registry/rest_store.py get_model_version
                data = w.api_client.do("GET", "/api/2.0/mlflow/unity-catalog/model-versions/get",
                                       query={"name": self._uc_name(name), "version": version})
                return self._uc_version(data["model_version"])
            # https://docs.databricks.com/api/workspace/modelregistry/getmodelversion
            return _ws_version(w.model_registry.get_model_version(name, version).model_version)

    def get_registered_model(self, name: str, *, deadline: Deadline | None = None,
                             on_request: OnRequest | None = None) -> RegisteredModelEvidence:
        what = f"get registered model {name}"
        with self._bounded(deadline, what, on_request) as w:
            if self.unity_catalog:
                # tags and aliases: rest_store.py get_registered_model; the owner field only in the UC API
                # (https://docs.databricks.com/api/workspace/registeredmodels/get)
                rm = w.api_client.do("GET", "/api/2.0/mlflow/unity-catalog/registered-models/get",
                                     query={"name": self._uc_name(name)})["registered_model"]
                info = w.registered_models.get(name)
                return RegisteredModelEvidence(
                    name=rm["name"], description=rm.get("description") or None, tags=_pairs(rm.get("tags")),
                    aliases={a["alias"]: str(a["version"]) for a in rm.get("aliases") or []}, owner=info.owner or None)
            # https://docs.databricks.com/api/workspace/modelregistry/getmodel
            # (/api/2.0/mlflow/databricks/registered-models/get): no aliases in the workspace registry
            rm = w.model_registry.get_model(name).registered_model_databricks
            return RegisteredModelEvidence(
                name=rm.name, description=rm.description or None, tags={t.key: t.value or "" for t in rm.tags or []},
                latest_versions={mv.current_stage or "None": str(mv.version) for mv in rm.latest_versions or []})

    def search_model_versions(self, filter_string: str | None, page_token: str | None, max_results: int, *,
                              updated_since: int | None = None, deadline: Deadline | None = None,
                              on_request: OnRequest | None = None):
        with self._bounded(deadline, "search model versions", on_request) as w:
            if not self.unity_catalog:
                # https://docs.databricks.com/api/workspace/modelregistry/searchmodelversions
                query = {"max_results": max_results, "order_by": ["last_updated_timestamp DESC"]}
                if filter_string:
                    query["filter"] = filter_string
                if page_token:
                    query["page_token"] = page_token
                data = w.api_client.do("GET", "/api/2.0/mlflow/model-versions/search", query=query)
                page = [(_ws_version_json(mv), int(mv.get("last_updated_timestamp") or 0))
                        for mv in data.get("model_versions") or []]
                return page, data.get("next_page_token") or None
            if filter_string:
                page, token = self._uc_versions_page(w, filter_string, page_token, max_results)
                return sorted(page, key=lambda p: -p[1]), token
            # UC searches versions of one model at a time: the models (changed since updated_since,
            # by their updated_at), then their versions
            out = []
            for model_name, updated in self._uc_models(w):
                if updated_since is not None and updated < updated_since:
                    continue
                token = None
                while True:
                    page, token = self._uc_versions_page(w, f"name='{model_name}'", token, 1000)
                    out += page
                    if not token:
                        break
            return sorted(out, key=lambda p: -p[1]), None

    def _uc_versions_page(self, w: WorkspaceClient, filter_string: str, page_token: str | None, max_results: int):
        # rest_store.py search_model_versions: one name= or run_id= condition, order_by refused
        query = {"filter": filter_string, "max_results": max_results}
        if page_token:
            query["page_token"] = page_token
        data = w.api_client.do("GET", "/api/2.0/mlflow/unity-catalog/model-versions/search", query=query)
        page = [(self._uc_version(mv), int(mv.get("last_updated_timestamp") or 0)) for mv in data.get("model_versions") or []]
        return page, data.get("next_page_token") or None

    def _uc_models(self, w: WorkspaceClient) -> list[tuple[str, int]]:
        # the registered models of EVIDENCE_GATE_UC_SCHEMAS, or every model the identity may see
        # (https://docs.databricks.com/api/workspace/registeredmodels/list)
        return databricks_scope.list_models(w, databricks_scope.parse(self._uc_schemas))

    def search_registered_models(self, page_token: str | None, max_results: int, *, deadline: Deadline | None = None,
                                 on_request: OnRequest | None = None):
        with self._bounded(deadline, "search registered models", on_request) as w:
            if self.unity_catalog:  # UC lists in its own order: all of it, newest first
                return sorted(self._uc_models(w), key=lambda p: -p[1]), None
            # https://docs.databricks.com/api/workspace/modelregistry/searchmodels
            query = {"max_results": max_results, "order_by": ["last_updated_timestamp DESC"]}
            if page_token:
                query["page_token"] = page_token
            data = w.api_client.do("GET", "/api/2.0/mlflow/registered-models/search", query=query)
            page = [(rm["name"], int(rm.get("last_updated_timestamp") or 0)) for rm in data.get("registered_models") or []]
            return page, data.get("next_page_token") or None

    def _uc_version(self, mv: dict) -> VersionEvidence:
        run_id = mv.get("run_id") or None
        workspace = mv.get("run_tracking_server_id") or None  # the workspace of the source run
        if run_id and workspace:
            with self._lock:
                self._run_workspaces[run_id] = str(workspace)
                model_id = mv.get("model_id") or _logged_model_of(mv.get("source"))
                if model_id:
                    self._model_runs[str(model_id)] = run_id
        evidence = _ws_version_json(mv)
        evidence.aliases = [str(a["alias"]) for a in mv.get("aliases") or []]
        evidence.model_id = mv.get("model_id") or None
        evidence.user_ids = [mv["user_id"]] if mv.get("user_id") else []
        evidence.deployment_job = _deployment_job(mv.get("deployment_job_state"))
        return evidence

    # -- tracking --------------------------------------------------------------------------
    def get_run(self, run_id: str, *, deadline: Deadline | None = None,
                on_request: OnRequest | None = None) -> RunEvidence:
        what = f"get run {run_id}"
        with self._bounded(deadline, what, on_request) as w:
            try:
                # https://docs.databricks.com/api/workspace/experiments/getrun
                run = w.experiments.get_run(run_id).run
            except dbx_errors.NotFound:
                foreign = self._foreign(w, run_id)
                if foreign is None:
                    raise
                w = self._there(foreign, run_id)  # the run's own workspace, where it is read
                run = w.experiments.get_run(run_id).run
            evidence = _run(run)
            if evidence.git_commit is None and evidence.tags.get(JOB_RUN_TAG):
                evidence.code_version = _job_commit(w, evidence.tags[JOB_RUN_TAG])
            return evidence

    def _foreign(self, w: WorkspaceClient, ident: str) -> _Foreign | None:
        """The other workspace a run (or a logged model, by its run) lives in, from the UC versions
        seen (``run_tracking_server_id``); None when it is this one or not known."""
        with self._lock:
            workspace = self._run_workspaces.get(ident) or self._run_workspaces.get(self._model_runs.get(ident, ""))
        here = w.config.workspace_id
        if workspace and str(workspace) != str(here or ""):
            return _Foreign(workspace)
        return None

    def _there(self, foreign: _Foreign, run_id: str) -> WorkspaceClient:
        """The client of the workspace a run lives in, when EVIDENCE_GATE_DATABRICKS_WORKSPACES names
        it; otherwise the run is unreadable evidence (EVD-008), never missing."""
        target = databricks_workspaces.parse(self._workspaces).get(foreign.workspace)
        if target is None:
            raise EvidenceUnreadable(
                f"source run {run_id}",
                f"the run is in Databricks workspace {foreign.workspace}, which this registry's workspace cannot read",
                f"name that workspace in {databricks_workspaces.SETTING} ({foreign.workspace}=https://<its host>), or"
                f" check this version with DATABRICKS_HOST set to workspace {foreign.workspace}",
                location=f"workspace {foreign.workspace}")
        return workspace_client(target.profile, host=target.host)

    def _client_for(self, w: WorkspaceClient, location: str) -> WorkspaceClient:
        """The workspace that holds an MLflow tracking location: another one for a run (or logged
        model) known to live there and configured, else this one."""
        where = databricks_presigned.tracking_path(location)
        foreign = self._foreign(w, where.ident) if where is not None else None
        if foreign is None or foreign.workspace not in databricks_workspaces.parse(self._workspaces):
            return w
        return self._there(foreign, where.ident)

    def job_task_runs(self, job_run_id: str, *, deadline: Deadline | None = None,
                      on_request: OnRequest | None = None) -> list[str]:
        """The run ids of a job run's tasks (https://docs.databricks.com/api/workspace/jobs/getrun
        ``tasks[].run_id``); [] when the job run is unknown or this identity may not read it."""
        if not job_run_id.isdigit():
            return []
        with self._bounded(deadline, f"get job run {job_run_id}", on_request) as w:
            try:
                run = w.jobs.get_run(int(job_run_id))
            except (dbx_errors.NotFound, dbx_errors.BadRequest, dbx_errors.PermissionDenied) as exc:
                log.info("job run %s: no tasks read (%s)", job_run_id, _first_line(exc))
                return []
            return [str(t.run_id) for t in run.tasks or [] if t.run_id and str(t.run_id) != job_run_id]

    def search_experiments(self, page_token: str | None, max_results: int, *, deadline: Deadline | None = None,
                           on_request: OnRequest | None = None):
        with self._bounded(deadline, "search experiments", on_request) as w:
            # https://docs.databricks.com/api/workspace/experiments/searchexperiments (one page)
            body = {"max_results": max_results, **({"page_token": page_token} if page_token else {})}
            data = w.api_client.do("POST", "/api/2.0/mlflow/experiments/search", body=body)
            return [str(e["experiment_id"]) for e in data.get("experiments") or []], data.get("next_page_token") or None

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int, *,
                    deadline: Deadline | None = None, on_request: OnRequest | None = None) -> list[str]:
        with self._bounded(deadline, "search runs", on_request) as w:
            # https://docs.databricks.com/api/workspace/experiments/searchruns (one page)
            data = w.api_client.do("POST", "/api/2.0/mlflow/runs/search",
                                   body={"experiment_ids": experiment_ids, "filter": filter_string, "max_results": max_results})
            return [r["info"].get("run_id") or r["info"]["run_uuid"] for r in data.get("runs") or []]

    def get_logged_model(self, model_id: str, *, deadline: Deadline | None = None,
                         on_request: OnRequest | None = None) -> LoggedModelInfo:
        with self._bounded(deadline, f"get logged model {model_id}", on_request) as w:
            # https://docs.databricks.com/api/workspace/experiments/getloggedmodel
            try:
                info = w.experiments.get_logged_model(model_id).model.info
            except dbx_errors.NotFound:
                foreign = self._foreign(w, model_id)  # with its run, in another workspace
                if foreign is None or foreign.workspace not in databricks_workspaces.parse(self._workspaces):
                    raise
                info = self._there(foreign, model_id).experiments.get_logged_model(model_id).model.info
            return LoggedModelInfo(model_id=info.model_id, artifact_location=info.artifact_uri,
                                   source_run_id=info.source_run_id or None)

    # -- artifacts -------------------------------------------------------------------------
    def list_artifacts(self, location: str, *, deadline: Deadline | None = None,
                       on_request: OnRequest | None = None) -> list[str]:
        if azure_storage.serves(location):  # a Unity Catalog external location in ADLS, read with the identity
            _told_once(on_request)
            return azure_storage.list_artifacts(location, deadline=deadline or Deadline(DEFAULT_CHECK_SECONDS))
        path = self._files_path(location)
        with self._bounded(deadline, f"list artifacts at {location}", on_request) as w:
            w = self._client_for(w, location)
            try:
                # https://docs.databricks.com/api/workspace/files/listdirectorycontents: "If there is no
                # directory at the specified path, the API returns an HTTP 404 error."
                entries = list(w.files.list_directory_contents(path))
            except dbx_errors.DatabricksError as exc:
                where = _presigned_fallback(location, exc)
                if where is None:
                    raise self._artifact_error(location, exc) from None
                try:
                    return databricks_presigned.list_names(w, where)
                except dbx_errors.DatabricksError as again:
                    raise self._artifact_error(location, again, api=MLFLOW_ARTIFACTS_API) from None
            return sorted((e.name or os.path.basename((e.path or "").rstrip("/"))) + ("/" if e.is_directory else "")
                          for e in entries)

    def read_artifact_text(self, location: str, name: str, limit: int, *, deadline: Deadline | None = None,
                           on_request: OnRequest | None = None) -> str:
        if azure_storage.serves(location):
            _told_once(on_request)
            return azure_storage.read_artifact_text(location, name, limit,
                                                    deadline=deadline or Deadline(DEFAULT_CHECK_SECONDS))
        path = f"{self._files_path(location).rstrip('/')}/{name}"
        with self._bounded(deadline, f"download {name} from {location}", on_request) as w:
            w = self._client_for(w, location)
            try:
                # https://docs.databricks.com/api/workspace/files/download
                contents = w.files.download(path).contents
                raw = contents.read(limit)
                contents.close()
            except dbx_errors.DatabricksError as exc:
                where = _presigned_fallback(location, exc)
                if where is None:
                    raise self._artifact_error(f"{location}/{name}", exc) from None
                try:
                    raw = databricks_presigned.read_text(w, self._storage, where, name, limit, deadline=_deadline(),
                                                         registry=self.uri, location=location)
                except dbx_errors.DatabricksError as again:
                    raise self._artifact_error(f"{location}/{name}", again, api=MLFLOW_ARTIFACTS_API) from None
            return raw.decode("utf-8", errors="replace")

    def _files_path(self, location: str) -> str:
        """Where the Files API serves ``location`` (mlflow databricks_run_artifact_repo.py and
        databricks_logged_model_artifact_repo.py ``_build_root_path``; UC volumes as they are)."""
        match = TRACKING_ARTIFACTS.match(location or "")
        if match:
            experiment, logged, ident, rest = match.groups()
            return f"{FILES_ROOT}/{experiment}/{'LoggedModels' if logged else 'Runs'}/{ident}{rest or ''}"
        for prefix in ("dbfs:/Volumes/", "/Volumes/"):
            if (location or "").startswith(prefix):
                return "/Volumes/" + location[len(prefix):]
        raise EvidenceUnreadable(
            f"artifacts at {location}", "the location is neither an MLflow tracking location"
            " (dbfs:/databricks/mlflow-tracking/...) nor a Unity Catalog volume, which the Files API serves,"
            " nor an Azure storage account",
            "log the model with MLflow to the workspace's tracking server, or store it in a Unity Catalog volume",
            location=location)

    def _artifact_error(self, location: str, exc: dbx_errors.DatabricksError, api: str = FILES_API) -> Exception:
        code = exc.error_code or ""
        if isinstance(exc, dbx_errors.NotFound) and code != "ENDPOINT_NOT_FOUND":
            return NotFoundInRegistry(f"artifacts at {location}: {_first_line(exc)}")
        if isinstance(exc, (dbx_errors.PermissionDenied, dbx_errors.Unauthenticated)):
            status = 403 if isinstance(exc, dbx_errors.PermissionDenied) else 401
            return EvidenceUnreadable(f"artifacts at {location}", f"HTTP {status} {code} from {api}",
                                      "grant the identity CAN READ on the run's experiment (and READ VOLUME on a"
                                      " Unity Catalog volume)", location=location)
        if isinstance(exc, (dbx_errors.NotFound, dbx_errors.NotImplemented)):
            return EvidenceUnreadable(f"artifacts at {location}", f"this workspace does not serve {api}"
                                      f" ({code or 'HTTP 404/501'})", "enable the Files API on the workspace",
                                      location=location)
        return self._api_error(f"artifacts at {location}", exc)


# -- mapping -----------------------------------------------------------------------------------
_STATUS = {dbx_errors.InternalError: 500, dbx_errors.TemporarilyUnavailable: 503, dbx_errors.DeadlineExceeded: 504,
           dbx_errors.NotImplemented: 501, dbx_errors.ResourceConflict: 409, dbx_errors.Cancelled: 499}


def _ws_version(mv) -> VersionEvidence:
    """A workspace registry ``ml.ModelVersion``."""
    return _ws_version_json(mv.as_dict())


def _ws_version_json(mv: dict) -> VersionEvidence:
    stage = mv.get("current_stage")
    return VersionEvidence(
        name=mv["name"], version=str(mv["version"]), status=mv.get("status") or "READY", source=mv.get("source") or None,
        run_id=mv.get("run_id") or None, user_id=mv.get("user_id") or None, description=mv.get("description") or None,
        stage=stage if stage not in (None, "", "None") else None, status_message=mv.get("status_message") or None,
        creation_timestamp=int(mv["creation_timestamp"]) if mv.get("creation_timestamp") is not None else None,
        tags=_pairs(mv.get("tags")))


def _deployment_job(state: dict | None) -> DeploymentJob | None:
    """A UC version's ``deployment_job_state`` (mlflow/protos/databricks_uc_registry_messages.proto
    ``ModelVersionDeploymentJobState``: job_id, run_id, job_state, run_state, current_task_name; enum
    values by name, ``..._UNSPECIFIED`` meaning none; https://docs.databricks.com/aws/en/mlflow/deployment-job).
    None when the model has no deployment job."""
    if not isinstance(state, dict) or not state.get("job_id"):
        return None

    def named(value) -> str | None:
        return None if not value or str(value).endswith("_UNSPECIFIED") else str(value)

    return DeploymentJob(job_id=str(state["job_id"]), run_id=str(state.get("run_id") or "") or None,
                         job_state=named(state.get("job_state")), run_state=named(state.get("run_state")),
                         current_task=state.get("current_task_name") or None)


def _run(run) -> RunEvidence:
    """A ``databricks.sdk.service.ml.Run``."""
    info, data = run.info, run.data
    datasets = []
    for dataset_input in (run.inputs.dataset_inputs if run.inputs else None) or []:
        ds = dataset_input.dataset
        context = next((t.value for t in dataset_input.tags or [] if t.key == "mlflow.data.context"), None)
        datasets.append(DatasetRef(name=ds.name, digest=ds.digest, source=ds.source or "", context=context))
    tags = {t.key: t.value or "" for t in (data.tags if data else None) or []}
    launched = True if (any(tags.get(k) for k in JOB_TAGS) or tags.get("mlflow.source.type") == "JOB") else None
    return RunEvidence(
        run_id=info.run_id or info.run_uuid,
        status=info.status.value if info.status else None,
        lifecycle_stage=info.lifecycle_stage,
        experiment_id=str(info.experiment_id) if info.experiment_id is not None else None,
        start_time=info.start_time, end_time=info.end_time, user=info.user_id or None, artifact_uri=info.artifact_uri,
        params={p.key: p.value or "" for p in (data.params if data else None) or []},
        metrics={m.key: float(m.value) for m in (data.metrics if data else None) or []},
        tags=tags, datasets=datasets, launched_by_job=launched)


def _job_commit(w: WorkspaceClient, job_run_id: str) -> str | None:
    """The commit a job run checked out (its ``git_source``), or None when the run has none or this
    identity cannot read it (https://docs.databricks.com/api/workspace/jobs/getrun)."""
    if not job_run_id.isdigit():
        return None
    try:
        run = w.jobs.get_run(int(job_run_id))
    except (dbx_errors.NotFound, dbx_errors.BadRequest, dbx_errors.PermissionDenied):
        return None
    for source in [run.git_source, *(t.git_source for t in run.tasks or [])]:
        if source is not None:
            commit = (source.git_snapshot.used_commit if source.git_snapshot else None) or source.git_commit
            if commit:
                return commit
    return None


def _presigned_fallback(location: str, exc: dbx_errors.DatabricksError) -> databricks_presigned.TrackingPath | None:
    """Where MLflow's artifact APIs serve ``location``, when the Files API refused it (401/403) or is
    not there (404 ENDPOINT_NOT_FOUND, 501) and the location is an MLflow tracking location."""
    refused = isinstance(exc, (dbx_errors.PermissionDenied, dbx_errors.Unauthenticated, dbx_errors.NotImplemented))
    missing = isinstance(exc, dbx_errors.NotFound) and exc.error_code == "ENDPOINT_NOT_FOUND"
    return databricks_presigned.tracking_path(location) if refused or missing else None


def _logged_model_of(source: str | None) -> str | None:
    """The logged model a version's source names: ``models:/<model id>`` (MLflow 3) or a
    ``.../logged_models/<model id>/artifacts`` location."""
    match = re.match(r"^models:/(m-[^/]+)$", source or "") or re.search(r"/logged_models/([^/]+)/", source or "")
    return match.group(1) if match else None


def _told_once(on_request: OnRequest | None) -> None:
    """A read from Azure storage, not the workspace: one request to the caller (its few requests go
    to the storage account, which Databricks' rate limits do not cover)."""
    if on_request is not None:
        on_request()


def _pairs(items) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or []}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return re.sub(r"\s+", " ", text[0] if text else type(exc).__name__)[:300]


def _connection_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "ConnectionResetError" in text:
        return "connection reset"
    return "TLS handshake failed" if isinstance(exc, requests.exceptions.SSLError) else "connection failed"
