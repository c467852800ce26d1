"""Registry access for Azure Machine Learning workspaces, without MLflow or its Azure ML plugin.

A registry is a workspace, named by its MLflow tracking URI (``azureml://{host}/mlflow/v1.0/
subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}``,
the workspace's ``mlFlowTrackingUri``) or by its resource id (``/subscriptions/.../workspaces/{ws}``,
as Event Grid names it; its tracking URI is then asked of the workspace). What is read where:

- model versions, their stage and creator, and the model's versions by stage: the model assets,
  through azure-ai-ml (``MLClient.models``); Azure ML keeps a version's job in ``job_name`` and its
  files at ``path``;
- runs (params, metrics, tags, MLflow dataset inputs), experiments and run search: the workspace's
  MLflow REST endpoint (https on the ``mlFlowTrackingUri`` host, ``/mlflow/v2.0``), read by
  :class:`shared.evidence.rest.RestBackend` with an Azure bearer token;
- what Azure ML records about the run's job (``MLClient.jobs.get``): its inputs (data assets and
  URIs: the training data lineage), git properties (``azureml.git.commit`` /
  ``mlflow.source.git.commit``), type (a command, pipeline or sweep job is never interactive; a
  run without a job is a notebook or compute-instance session) and ``creation_context.created_by``;
- files (MLmodel, environment files, the run's artifact names): the workspace's run-history
  artifact service (``/artifact/v2.0/.../artifacts/ExperimentRun/dcid.{run}/prefix/contentinfo``),
  which lists a job's files with a SAS URL each; the file is then read from storage by that URL.

Only the SDKs' standard configuration reaches Azure: the ARM endpoint from azure-ai-ml's cloud
settings (``AZUREML_CURRENT_CLOUD`` / ``ARM_CLOUD_METADATA_URL``), the credential from
:func:`shared.azure_credential.credential` (never a prompt, never the instance-metadata address),
TLS trust from ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``. One connection (SDK client, HTTP
session, token cache) per workspace per process.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared import azure_credential
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
from shared.evidence import rest
from shared.evidence.deadline import DEFAULT_CHECK_SECONDS, Deadline
from shared.evidence.model import DatasetRef, LoggedModelInfo, RegisteredModelEvidence, RunEvidence, VersionEvidence

WORKSPACE_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/?#]+)", re.IGNORECASE)
# An Azure ML registry (shared across workspaces): an asset URI azureml://registries/{name}/... or its resource id
REGISTRY = re.compile(r"(?:^azureml://registries/|/providers/Microsoft\.MachineLearningServices/registries/)"
                      r"(?P<name>[^/?#]+)", re.IGNORECASE)
REGISTRY_NOT_READ = ("Evidence Gate does not read Azure ML registries: a registry's model has no runs or jobs of its"
                     " own (its lineage, params and metrics stay in the workspace that trained it)")
# Where a model version's or run's files are, as Azure ML writes the location
_RUN_ARTIFACTS = re.compile(r"/experiments/[^/]+/runs/(?P<run>[^/]+)/artifacts(?:/(?P<path>.*))?$")
_DATASTORE_RUN = re.compile(r"/datastores/workspaceartifactstore/paths/ExperimentRun/dcid\.(?P<run>[^/]+)(?:/(?P<path>.*))?$")
_JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<run>[^/]+)/outputs/artifacts/paths/?(?P<path>.*)$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)/?(?P<path>.*)$")
_DATA_ASSET = re.compile(r"^azureml:(?!//)(?P<name>[^:@/]+)(?:[:@](?P<version>[^/]+))?$")
JOB_TYPES = ("command", "pipeline", "sweep", "automl", "spark")  # submitted jobs: never interactive
SDK_TIMEOUT = 15.0  # seconds: one ARM request (the check's deadline bounds the whole call)
ROLE_FIX = ("give the function app's identity the Reader role on the workspace (models, jobs, runs and their files"
            " are reads; 'AzureML Data Scientist' also covers them)")


def serves(uri: str) -> bool:
    """Whether ``uri`` names an Azure ML workspace: an ``azureml://`` tracking URI or a resource id."""
    return uri.lower().startswith("azureml://") or bool(WORKSPACE_ID.fullmatch(uri.rstrip("/"))) \
        or bool(REGISTRY.search(uri) and uri.lower().startswith("/subscriptions/"))


@dataclass(frozen=True)
class WorkspaceRef:
    subscription: str
    resource_group: str
    name: str
    tracking_uri: str | None  # the mlFlowTrackingUri when the registry URI is one

    @property
    def key(self) -> tuple[str, str, str]:
        return self.subscription.lower(), self.resource_group.lower(), self.name.lower()

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}")


def workspace_ref(uri: str, shown_uri: str) -> WorkspaceRef:
    registry = REGISTRY.search(uri)
    if registry:
        raise BadInput(f"cannot use registry URI '{shown_uri}': '{registry['name']}' is an Azure ML registry."
                       f" {REGISTRY_NOT_READ}; check the version in that workspace (its mlFlowTrackingUri or"
                       " resource id)")
    parts = urlsplit(uri)
    path = parts.path if uri.lower().startswith("azureml://") else uri
    match = WORKSPACE_ID.search(path)
    if not match or (uri.lower().startswith("azureml://") and not parts.hostname):
        raise BadInput(f"cannot use registry URI '{shown_uri}': an Azure ML workspace is azureml://{{host}}/mlflow/"
                       "v1.0/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/"
                       "workspaces/{name} (its mlFlowTrackingUri) or its resource id")
    tracking = uri if uri.lower().startswith("azureml://") else None
    return WorkspaceRef(match["sub"], match["rg"], match["ws"], tracking)


def mlflow_base(tracking_uri: str) -> str:
    """The https base of a workspace's MLflow REST API from its ``mlFlowTrackingUri`` (the v1.0
    path is served as v2.0, as the Azure ML MLflow plugin maps it)."""
    parts = urlsplit(tracking_uri)
    return urlunsplit(("https", parts.netloc, parts.path.replace("/mlflow/v1.0", "/mlflow/v2.0").rstrip("/"), "", ""))


class _BearerToken(requests.auth.AuthBase):
    """An Azure AD token for every request (azure-identity caches and refreshes it)."""

    def __init__(self, credential, scope: str):
        self._credential, self._scope = credential, scope

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._credential.get_token(self._scope).token}"
        return request


_CLOUDS: dict[tuple[str | None, str | None], dict] = {}  # (AZUREML_CURRENT_CLOUD, ARM_CLOUD_METADATA_URL) -> arguments
_CLOUDS_LOCK = threading.Lock()


def cloud_arguments() -> dict:
    """azure-ai-ml's cloud configuration, looked up once per process, as ``MLClient``'s ``cloud`` /
    ``cloud_metadata`` keyword arguments (azure-sdk-for-python#28780).

    The configuration is the SDK's own: ``AZUREML_CURRENT_CLOUD`` names the cloud (default: Azure's
    public cloud; the public and sovereign clouds are built into azure-ai-ml, nothing is fetched);
    a cloud that is not built in is described by ``ARM_CLOUD_METADATA_URL`` (ARM's
    ``/metadata/endpoints``), unnamed it is the cloud whose ``resourceManager`` the URL is on
    (azure-ai-ml's ``_get_default_cloud_name``). azure-ai-ml 1.35 fetches that URL again on every
    look-up (``_get_cloud`` files the fetched endpoints under the wrong key): five times while
    building one ``MLClient``. Handing it the endpoints once files them where it looks (the three
    fetches of ``import azure.ai.ml`` itself, for class defaults, happen before this can run)."""
    key = (os.environ.get("AZUREML_CURRENT_CLOUD") or None, os.environ.get("ARM_CLOUD_METADATA_URL") or None)
    with _CLOUDS_LOCK:
        if key not in _CLOUDS:
            found = _lookup_cloud(*key)
            if found is None:  # the metadata could not be fetched: azure-ai-ml tries (and reports) itself
                return {"cloud": key[0]} if key[0] else {}
            _CLOUDS[key] = found
        return dict(_CLOUDS[key])


def _lookup_cloud(name: str | None, url: str | None) -> dict | None:
    from azure.ai.ml._azure_environments import EndpointURLS, _environments, _get_clouds_by_metadata_url

    if url is None or (name is not None and name in _environments):
        return {"cloud": name} if name else {}
    clouds = _get_clouds_by_metadata_url(url)  # {} when it could not be fetched
    if not clouds:
        return None
    if name is None:
        name = next((n for n, c in clouds.items() if c[EndpointURLS.RESOURCE_MANAGER_ENDPOINT] in url), None)
    if name is None or name not in clouds:
        return {"cloud": name} if name else {}  # azure-ai-ml reports the unknown cloud itself
    return {"cloud": name, "cloud_metadata": clouds[name]}


class Connection:
    """Everything one workspace needs, made once per process: the azure-ai-ml client, the MLflow
    REST reader, the artifact service's base URL, one HTTP session and one token cache."""

    def __init__(self, ref: WorkspaceRef, shown_uri: str, credential):
        from azure.ai.ml import MLClient
        from azure.ai.ml._azure_environments import _get_base_url_from_metadata

        retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 3)
        self.ref = ref
        self.ml = MLClient(credential, ref.subscription, ref.resource_group, ref.name, show_progress=False,
                           enable_telemetry=False, retry_total=retries, retry_backoff_max=rest.MAX_RETRY_AFTER,
                           connection_timeout=SDK_TIMEOUT, read_timeout=SDK_TIMEOUT, **cloud_arguments())
        self.auth = _BearerToken(credential, _get_base_url_from_metadata().rstrip("/") + "/.default")
        self.session = requests.Session()
        # the artifact service and SAS downloads; every call waits at most the check's deadline (within())
        retry = Retry(total=retries, backoff_factor=1, backoff_jitter=0.5, allowed_methods=None,
                      status_forcelist=(429, 500, 502, 503, 504), respect_retry_after_header=True,
                      raise_on_status=False)
        self.session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=retry))
        self.calls = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"azureml-{ref.name}")
        self._shown = shown_uri
        self._tracking_uri = ref.tracking_uri
        self._tracking: rest.RestBackend | None = None
        self._lock = threading.Lock()

    def tracking(self, deadline: Deadline) -> rest.RestBackend:
        """The workspace's MLflow REST endpoint (its ``mlFlowTrackingUri``, asked once)."""
        with self._lock:
            if self._tracking is not None:
                return self._tracking
        uri = self._tracking_uri or within(deadline, self._shown, "get workspace",
                                           lambda: self.ml.workspaces.get(self.ref.name).mlflow_tracking_uri, self.calls)
        if not uri:
            raise ConfigurationError(f"Azure ML workspace {self.ref.name} reports no mlFlowTrackingUri")
        backend = rest.RestBackend(mlflow_base(uri), self._shown, auth=self.auth)
        with self._lock:
            self._tracking_uri, self._tracking = uri, backend
            return backend

    @property
    def tracking_uri(self) -> str | None:
        return self._tracking_uri

    @property
    def artifact_base(self) -> str:
        netloc = urlsplit(self._tracking_uri or "").netloc
        return f"https://{netloc}/artifact/v2.0{self.ref.resource_id}/artifacts"


_CONNECTIONS: dict[tuple, Connection] = {}
_CONNECTIONS_LOCK = threading.Lock()


def connection(ref: WorkspaceRef, shown_uri: str, client_id: str | None = None) -> Connection:
    """The process's one connection to this workspace (for this identity)."""
    key = (*ref.key, client_id or os.environ.get("AZURE_CLIENT_ID") or None)
    with _CONNECTIONS_LOCK:
        found = _CONNECTIONS.get(key)
        if found is None:
            found = _CONNECTIONS[key] = Connection(ref, shown_uri, azure_credential.credential(client_id))
        return found


def within(deadline: Deadline, registry: str, what: str, fn: Callable[[], Any], pool: futures.Executor):
    """``fn()`` (an SDK call, whose own retries are bounded) or DeadlineExceeded when the check's
    deadline passes first."""
    deadline.check(registry, what)
    future = pool.submit(fn)
    try:
        return future.result(timeout=deadline.remaining())
    except futures.TimeoutError:
        raise DeadlineExceeded(registry, what, deadline.seconds) from None


class AzureMLBackend:
    name = "azureml"

    def __init__(self, uri: str, shown_uri: str):
        self.uri = shown_uri
        self.ref = workspace_ref(uri, shown_uri)
        self._conn: Connection | None = None
        # (run, prefix) -> its files with their SAS URLs, for this backend's life (one check): a
        # listing under a prefix answers for every path below it
        self._listings: dict[tuple[str, str], list[tuple[str, str]]] = {}

    # -- plumbing --------------------------------------------------------------------------
    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = connection(self.ref, self.uri)
        return self._conn

    def _sdk(self, deadline: Deadline | None, what: str, fn: Callable[[Connection], Any]):
        conn = self._connection()
        return within(_deadline(deadline), self.uri, what, lambda: fn(conn), conn.calls)

    def _mlflow(self, deadline: Deadline | None, what: str, fn: Callable[[rest.RestBackend], Any]):
        deadline = _deadline(deadline)
        conn = self._connection()
        tracking = conn.tracking(deadline)
        return within(deadline, self.uri, what, lambda: fn(tracking), conn.calls)

    def translate(self, what: str, exc: Exception) -> Exception:
        """An error of the SDKs or of the REST endpoints as ours."""
        if isinstance(exc, EvidenceGateError):
            return exc
        from azure.core import exceptions as azure

        if isinstance(exc, azure.ClientAuthenticationError) and getattr(exc, "response", None) is None:
            return _credential_error(self.uri, what, exc)  # the credential itself failed, no service answer
        if isinstance(exc, azure.HttpResponseError) and exc.status_code is not None:
            return _status_error(self.uri, what, exc.status_code, exc.response.headers.get("Retry-After")
                                 if exc.response is not None else None)
        if isinstance(exc, (azure.ServiceRequestError, azure.ServiceResponseError)):
            return RegistryUnavailable(self.uri, f"{what}: {rest._connection_reason(requests.ConnectionError(str(exc)))}")
        if isinstance(exc, rest.HttpFailure) and exc.status in (401, 403, 429):
            return _status_error(self.uri, what, exc.status, None)
        tracking = self._conn._tracking if self._conn is not None else None
        if tracking is not None:
            return tracking.translate(what, exc)  # the MLflow endpoint's answers, as for any MLflow server
        return RegistryUnavailable(self.uri, f"{what}: no usable answer")

    def tracking_uri(self, *, deadline: Deadline | None = None) -> str:
        """The workspace's ``mlFlowTrackingUri`` (asked once per process)."""
        try:
            self._connection().tracking(_deadline(deadline))
        except Exception as exc:
            translated = self.translate("get workspace", exc)
            if isinstance(translated, NotFoundInRegistry):
                translated = ConfigurationError(f"Azure ML workspace {self.ref.resource_id} was not found, or the"
                                                f" identity may not read it: {ROLE_FIX}")
            raise translated from None
        return self._connection().tracking_uri

    # -- registry: model assets ------------------------------------------------------------
    def get_model_version(self, name: str, version: str, *, deadline: Deadline | None = None) -> VersionEvidence:
        return version_from_model(self._sdk(deadline, f"get model {name}:{version}", lambda c: c.ml.models.get(name, version)))

    def get_registered_model(self, name: str, *, deadline: Deadline | None = None) -> RegisteredModelEvidence:
        versions = self._sdk(deadline, f"list versions of model {name}", lambda c: list(c.ml.models.list(name=name)))
        if not versions:
            raise NotFoundInRegistry(f"model {name} has no versions")
        latest: dict[str, str] = {}
        for model in versions:
            stage = model.stage or "None"
            if stage not in latest or int(model.version) > int(latest[stage]):
                latest[stage] = str(model.version)
        # the model's own tags and description (a version's are the version's): the workspace's MLflow
        # registry API, which Azure ML serves for the workspace's models (get_registered_model)
        model = self._mlflow(deadline, f"get model {name}", lambda t: t.get_registered_model(name, deadline=deadline))
        return RegisteredModelEvidence(name=name, description=model.description, tags=dict(model.tags),
                                       latest_versions=latest)

    def search_model_versions(self, filter_string: str | None, page_token: str | None, max_results: int, *,
                              deadline: Deadline | None = None):
        """Versions newest-updated first. Azure ML lists a model's versions (``name='...'``) or its
        models; every version of every model otherwise (one page: the asset listing has no order)."""
        match = re.fullmatch(r"name\s*=\s*'((?:[^'\\]|\\.)*)'", filter_string or "")
        if filter_string and not match:
            raise BadInput(f"Azure ML cannot search model versions by '{filter_string[:100]}'")
        names = [match.group(1).replace("\\'", "'")] if match else [n for n, _ in self._model_names(deadline)]
        page = []
        for name in names:
            for model in self._sdk(deadline, f"list versions of model {name}", lambda c, n=name: list(c.ml.models.list(name=n))):
                page.append((version_from_model(model), _updated_ms(model)))
        page.sort(key=lambda item: -item[1])
        return page, None

    def search_registered_models(self, page_token: str | None, max_results: int, *, deadline: Deadline | None = None):
        return sorted(self._model_names(deadline), key=lambda item: -item[1]), None

    def _model_names(self, deadline: Deadline | None) -> list[tuple[str, int]]:
        models = self._sdk(deadline, "list models", lambda c: list(c.ml.models.list()))
        return [(m.name, _updated_ms(m)) for m in models]

    # -- tracking: the workspace's MLflow endpoint and the run's job ---------------------------
    def get_run(self, run_id: str, *, deadline: Deadline | None = None) -> RunEvidence:
        run = self._mlflow(deadline, f"get run {run_id}", lambda t: t.get_run(run_id, deadline=deadline))
        try:
            job = self._sdk(deadline, f"get job {run_id}", lambda c: c.ml.jobs.get(run_id))
        except Exception as exc:
            translated = self.translate(f"get job {run_id}", exc)
            if not isinstance(translated, NotFoundInRegistry):
                raise translated from None
            job = None  # an MLflow run without a job: a notebook or compute-instance session
        apply_job(run, job)
        return run

    def search_experiments(self, page_token: str | None, max_results: int, *, deadline: Deadline | None = None):
        return self._mlflow(deadline, "search experiments", lambda t: t.search_experiments(page_token, max_results, deadline=deadline))

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int, *,
                    deadline: Deadline | None = None) -> list[str]:
        return self._mlflow(deadline, "search runs", lambda t: t.search_runs(experiment_ids, filter_string, max_results,
                                                                     deadline=deadline))

    def get_logged_model(self, model_id: str, *, deadline: Deadline | None = None) -> LoggedModelInfo:
        try:
            return self._mlflow(deadline, f"get logged model {model_id}", lambda t: t.get_logged_model(model_id, deadline=deadline))
        except EvidenceUnreadable:  # Azure ML answers logged-models with a 404 without a body
            raise EvidenceUnreadable(f"logged model {model_id}", "Azure ML does not serve the MLflow logged-models API",
                                     "nothing to configure: the version's job (job_name) gives its lineage") from None

    # -- artifacts: the run-history artifact service, files by SAS URL ---------------------------
    def list_artifacts(self, location: str, *, deadline: Deadline | None = None) -> list[str]:
        run_id, prefix = self._run_location(location)
        names = set()
        for path, _ in self._contents(deadline, location, run_id, prefix):
            rest_of = path[len(prefix):].strip("/") if prefix else path
            head, sep, _ = rest_of.partition("/")
            if head:
                names.add(head + ("/" if sep else ""))
        return sorted(names)

    def read_artifact_text(self, location: str, name: str, limit: int, *, deadline: Deadline | None = None) -> str:
        run_id, prefix = self._run_location(location)
        path = f"{prefix}/{name}".strip("/")
        url = next((u for p, u in self._contents(deadline, location, run_id, path) if p == path), None)
        if url is None:
            raise NotFoundInRegistry(f"{name} at {location}")
        deadline = _deadline(deadline)
        conn = self._connection()

        def read() -> str:
            response = conn.session.get(url, timeout=deadline.timeout(SDK_TIMEOUT), stream=True)  # SAS: no token
            with response:
                if response.status_code in (401, 403):
                    raise EvidenceUnreadable(f"{name} at {location}", f"HTTP {response.status_code} from storage",
                                             "let the function app reach the workspace's storage account (its"
                                             " network rules or private endpoint)", location=location)
                if response.status_code != 200:
                    raise _status_error(self.uri, f"download {name}", response.status_code,
                                        response.headers.get("Retry-After"))
                return response.raw.read(limit, decode_content=True).decode("utf-8", errors="replace")

        return within(deadline, self.uri, f"download {name}", read, conn.calls)

    def _run_location(self, location: str) -> tuple[str, str]:
        """(run, path under the run's artifacts) of a location Azure ML wrote, or EvidenceUnreadable."""
        registry = REGISTRY.search(location or "")
        if registry:
            raise EvidenceUnreadable(f"files at {location}", f"they are in the Azure ML registry '{registry['name']}'."
                                     f" {REGISTRY_NOT_READ}", "register the version in this workspace from its job's"
                                     " output (azureml://jobs/{job}/outputs/artifacts/paths/{path}) and check it"
                                     " there", location=location)
        for pattern in (_RUN_ARTIFACTS, _DATASTORE_RUN, _JOB_OUTPUT, _RUNS_URI):
            match = pattern.search(location or "")
            if match:
                if pattern is _DATASTORE_RUN and f"/workspaces/{self.ref.name.lower()}/" not in location.lower():
                    break  # another workspace's artifact store
                return match["run"], (match["path"] or "").strip("/")
        raise EvidenceUnreadable(f"files at {location}", "Evidence Gate reads Azure ML files from the workspace's run"
                                 " artifacts (job outputs); this location is elsewhere",
                                 "register the model from its job's output (azureml://jobs/{job}/outputs/artifacts/"
                                 "paths/{path})", location=location)

    def _contents(self, deadline: Deadline | None, location: str, run_id: str, prefix: str) -> list[tuple[str, str]]:
        """(path under the run, SAS URL) of every file under ``prefix``: from a listing this check
        already made of it or of a folder above it, else listed."""
        for (run, listed), files in list(self._listings.items()):
            if run == run_id and (not listed or prefix == listed or prefix.startswith(listed + "/")):
                return [(p, u) for p, u in files if not prefix or p == prefix or p.startswith(prefix + "/")]
        files = self._list_contents(deadline, location, run_id, prefix)
        self._listings[(run_id, prefix)] = files
        return files

    def _list_contents(self, deadline: Deadline | None, location: str, run_id: str, prefix: str) -> list[tuple[str, str]]:
        """(path under the run, SAS URL) of every file under ``prefix``, following the pages."""
        deadline = _deadline(deadline)
        conn = self._connection()
        conn.tracking(deadline)  # the artifact service is on the tracking URI's host
        url = f"{conn.artifact_base}/ExperimentRun/dcid.{quote(run_id, safe='')}/prefix/contentinfo"
        params: dict | None = {"path": prefix}

        def page(url: str, params: dict | None) -> dict:
            response = conn.session.get(url, params=params, auth=conn.auth, timeout=deadline.timeout(SDK_TIMEOUT))
            with response:
                if response.status_code == 404:
                    raise NotFoundInRegistry(f"no files at {location}")
                if response.status_code in (401, 403):
                    raise EvidenceUnreadable(f"files at {location}", f"HTTP {response.status_code} from the workspace's"
                                             " artifact service", ROLE_FIX, location=location)
                if response.status_code != 200:
                    raise _status_error(self.uri, f"list files at {location}", response.status_code,
                                        response.headers.get("Retry-After"))
                return response.json()

        out: list[tuple[str, str]] = []
        for _ in range(100):  # 100 pages at most
            data = within(deadline, self.uri, f"list files at {location}", lambda u=url, p=params: page(u, p), conn.calls)
            out += [(item["path"], item["contentUri"]) for item in data.get("value") or [] if item.get("contentUri")]
            if data.get("nextLink"):
                url, params = data["nextLink"], None
            elif data.get("continuationToken"):
                params = {"path": prefix, "continuationToken": data["continuationToken"]}
            else:
                return out
        return out


# -- mapping: what Azure ML records, as evidence -------------------------------------------------
def version_from_model(model) -> VersionEvidence:
    created = getattr(model, "creation_context", None)
    created_by = getattr(created, "created_by", None) or None
    return VersionEvidence(
        name=model.name,
        version=str(model.version),
        status="READY",  # a model asset exists once it is registered
        source=model.path or None,
        run_id=model.job_name or None,
        user_id=created_by,
        description=model.description or None,
        stage=model.stage or None,
        creation_timestamp=_ms(getattr(created, "created_at", None)),
        tags=dict(model.tags or {}),
    )


def apply_job(run: RunEvidence, job) -> None:
    """What Azure ML records about the run's job, onto the run's evidence: the job's data inputs
    (training data lineage), its git commit, whether it was a submitted job, its creator."""
    if job is None:
        run.launched_by_job = False
        return
    run.launched_by_job = (getattr(job, "type", None) or "").lower() in JOB_TYPES
    properties = dict(getattr(job, "properties", None) or {})
    run.code_version = properties.get("azureml.git.commit") or properties.get("mlflow.source.git.commit") or None
    for key, value in (getattr(job, "inputs", None) or {}).items():
        ref = dataset_from_input(key, value)
        if ref is not None:
            run.datasets.append(ref)
    created_by = getattr(getattr(job, "creation_context", None), "created_by", None)
    if created_by and created_by not in run.user_ids:
        run.user_ids.append(created_by)


def dataset_from_input(key: str, value) -> DatasetRef | None:
    """A job input that is data (a data asset ``azureml:name:version`` or a URI), or None (a literal).
    azure-ai-ml hands a job's inputs over as ``NodeInput`` objects holding the ``Input`` (or the
    literal value) as ``_data``; reading ``path`` of a literal one raises."""
    data = getattr(value, "_data", value)
    path = None if isinstance(data, (str, int, float, bool)) or data is None else getattr(data, "path", None)
    if not isinstance(path, str) or not path:
        return None
    asset = _DATA_ASSET.match(path)
    if asset:
        return DatasetRef(name=asset["name"], digest=asset["version"] or "", source=path, context="job_input")
    return DatasetRef(name=key, digest="", source=path, context="job_input")


def _status_error(registry: str, what: str, status: int, retry_after: str | None) -> Exception:
    if status == 404:
        return NotFoundInRegistry(f"{what}: not found")
    if status in (401, 403):
        return ConfigurationError(f"{what} in {registry} was refused (HTTP {status}): {ROLE_FIX}")
    wait = _seconds(retry_after)
    if status == 429:
        return RateLimited(registry, f"{what}: rate limited (HTTP 429)", retry_after=wait)
    if status == 400:
        return BadInput(f"{what} was refused by {registry} (HTTP 400)")
    return RegistryUnavailable(registry, f"{what}: HTTP {status}", retry_after=wait, status=status)


def _credential_error(registry: str, what: str, exc: Exception) -> Exception:
    from azure.identity import CredentialUnavailableError

    if isinstance(exc, CredentialUnavailableError):
        return ConfigurationError(f"{what}: the Azure credential is not available here: {azure_credential.NO_CREDENTIAL}")
    return RegistryUnavailable(registry, f"{what}: no Azure token (the identity endpoint did not issue one)")


def _seconds(value: str | None) -> float | None:
    try:
        return min(float(value), rest.MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None


def _ms(value) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


def _updated_ms(model) -> int:
    created = getattr(model, "creation_context", None)
    return _ms(getattr(created, "last_modified_at", None)) or _ms(getattr(created, "created_at", None)) or 0


def _deadline(deadline: Deadline | None) -> Deadline:
    return deadline if deadline is not None else Deadline(DEFAULT_CHECK_SECONDS)
