"""A local Azure Machine Learning for the test suite: one threaded HTTPS server on loopback that
the real azure-identity, azure-ai-ml and requests stacks talk to through their standard
configuration only (``ARM_CLOUD_METADATA_URL``, ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``,
``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, the workspace's ``mlFlowTrackingUri``).

What it serves, and what each answer follows:

- ``GET /metadata/endpoints``: ARM's cloud metadata (the list ``az cloud`` and azure-ai-ml read:
  azure/ai/ml/_azure_environments.py ``_get_clouds_by_metadata_url`` / ``_convert_arm_to_cli``).
- ``GET /msi/token``: the App Service / Functions managed-identity protocol, api-version
  2019-08-01 (azure/identity/_credentials/app_service.py): the ``X-IDENTITY-HEADER`` secret is
  required; the answer is ``access_token``, ``expires_on`` (epoch seconds), ``resource``,
  ``token_type``, ``client_id``.
- ARM (``/subscriptions/.../providers/Microsoft.MachineLearningServices/workspaces/{ws}...``):
  Workspace get, ModelVersion get/list, ModelContainer list, Job get. Bodies follow the
  azure-rest-api-specs examples of api-version 2024-10-01
  (specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/
  stable/2024-10-01/examples/Workspace/get.json, .../Workspace/ModelVersion/get.json and list.json,
  .../Job/CommandJob/get.json); errors are ARM's ``{"error": {"code", "message"}}``. Every ARM
  request needs a bearer token this server issued for the ARM audience and an ``api-version``.
- The workspace's MLflow endpoint (``/mlflow/v2.0/subscriptions/.../workspaces/{ws}/api/2.0/mlflow/...``,
  the v1.0 -> v2.0 mapping of azureml-mlflow's ``azureml/mlflow/__init__.py``) mapped onto a real
  open-source MLflow server, with Azure ML's differences: ``logged-models`` answers 404 with an
  empty body (azure-sdk-for-python#44896); a job's run loses the client's ``mlflow.source.*`` tags
  (azure-sdk-for-python#45207) and its git commit is a job property instead; a run's
  ``artifact_uri`` is ``azureml://.../experiments/{id}/runs/{run}/artifacts``.
- The run-history artifact service (``/artifact/v2.0/.../artifacts/{origin}/{container}/prefix/contentinfo``,
  the paths of azureml-mlflow's generated client ``azureml/mlflow/_restclient/artifact/operations/
  _artifacts_operations.py`` ``list_sas_by_prefix``; items ``{contentUri, origin, container, path}``
  as its ``ArtifactContentInformation`` model): every file under a prefix, each with a SAS URL.
- A blob stand-in for those SAS URLs (path-style ``/{account}/{container}/{blob}?sv=..&se=..&sig=..``,
  as Azurite addresses blobs): the signature and expiry are checked, no bearer token is needed.

Fault injection (:class:`Fault`): a status with ``Retry-After``, a delay, a body; for requests
whose path contains a given text, once per queued fault or always.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "rg-ml"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLOUD = "LocalAzureML"
STORAGE_ACCOUNT = "amlartifacts"
PROVIDER = "Microsoft.MachineLearningServices"
TOKEN_SECONDS = 3600
STATUS = {"FINISHED": "Completed", "FAILED": "Failed", "RUNNING": "Running", "KILLED": "Canceled",
          "SCHEDULED": "Queued"}


@dataclass
class Fault:
    status: int | None = None  # answer this status instead of the real answer
    retry_after: int | None = None
    delay: float = 0.0  # seconds before answering (then the real answer, unless status is set)
    body: bytes | None = None  # None: ARM's error JSON for the status


@dataclass
class Job:
    """What Azure ML records about a run's job beyond MLflow (tests set it per run)."""

    job_type: str | None = "Command"  # Command | Pipeline | Sweep; None: an interactive session, no job
    inputs: dict = field(default_factory=dict)  # REST JobInput objects by name
    properties: dict = field(default_factory=dict)
    created_by: str | None = None  # systemData.createdBy; default: the run's mlflow.user as a UPN
    code_id: str | None = None
    environment_id: str | None = None


class Workspace:
    def __init__(self, aml: LocalAzureML, name: str, mlflow_uri: str):
        self.aml = aml
        self.name = name
        self.mlflow_uri = mlflow_uri.rstrip("/")
        self.resource_id = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{PROVIDER}"
                            f"/workspaces/{name}")
        self.workspace_id = hashlib.sha256(name.encode()).hexdigest()[:32]
        self.jobs: dict[str, Job] = {}
        self.stages: dict[tuple[str, str], str] = {}
        self.modified: dict[tuple[str, str], int] = {}  # epoch ms of a version's last change after registration
        self.version_creators: dict[tuple[str, str], str] = {}
        self.logged_model_dirs: dict[tuple[str, str], str] = {}  # (run, name) -> artifact path on the server
        self.blobs: dict[str, str] = {}  # blob name -> artifact path on the server (what a SAS URL serves)
        self._lock = threading.Lock()

    @property
    def tracking_uri(self) -> str:
        """The workspace's ``mlFlowTrackingUri`` as Azure ML reports it."""
        return f"azureml://{self.aml.netloc}/mlflow/v1.0{self.resource_id}"

    def set_job(self, run_id: str, **fields) -> Job:
        job = Job(**fields)
        with self._lock:
            self.jobs[run_id] = job
        return job

    def set_stage(self, model: str, version: str, stage: str) -> None:
        """A stage change, as studio or ``models.create_or_update`` makes it (the version is modified)."""
        with self._lock:
            self.stages[(model, str(version))] = stage
            self.modified[(model, str(version))] = int(time.time() * 1000)

    def set_version_creator(self, model: str, version: str, created_by: str) -> None:
        with self._lock:
            self.version_creators[(model, str(version))] = created_by

    # -- the real MLflow server behind this workspace ------------------------------------------
    def mlflow(self, method: str, path: str, *, params: dict | None = None, body: bytes | None = None,
               headers: dict | None = None) -> tuple[int, bytes, str]:
        url = f"{self.mlflow_uri}{path}"
        if params:
            url += "?" + urlencode(params, doseq=True)
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")

    def mlflow_json(self, path: str, **params) -> dict | None:
        status, data, _ = self.mlflow("GET", f"/api/2.0/mlflow/{path}", params=params)
        return json.loads(data) if status == 200 else None


def certificates(folder: str) -> tuple[str, str, str]:
    """(CA bundle, server certificate chain, key) files for 127.0.0.1, made with trustme in
    ``folder``: the CA bundle is what ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` point at."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = tuple(os.path.join(folder, n) for n in ("ca.pem", "server.pem", "server.key"))
    ca.cert_pem.write_to_path(paths[0])
    with open(paths[1], "wb") as fh:
        for blob in cert.cert_chain_pems:
            fh.write(blob.bytes())
    cert.private_key_pem.write_to_path(paths[2])
    return paths


class LocalAzureML:
    def __init__(self, cert_chain: str, key: str, *, identity_secret: str | None = None):
        self.identity_secret = identity_secret or secrets.token_hex(16)
        self._sas_key = secrets.token_bytes(32)
        self.workspaces: dict[str, Workspace] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (resource, expires_on)
        self.requests: list[tuple[str, str]] = []
        self._faults: list[tuple[str, deque[Fault]]] = []
        self._always: list[tuple[str, Fault]] = []
        self._lock = threading.Lock()
        aml = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                aml._handle(self)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_chain, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.netloc = f"127.0.0.1:{self.server.server_address[1]}"
        self.base = f"https://{self.netloc}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- configuration -----------------------------------------------------------------------
    @property
    def resource_manager(self) -> str:
        return f"{self.base}/"

    @property
    def metadata_url(self) -> str:
        """What ``ARM_CLOUD_METADATA_URL`` is set to."""
        return f"{self.base}/metadata/endpoints?api-version=2019-05-01"

    @property
    def identity_endpoint(self) -> str:
        """What the Functions host sets ``IDENTITY_ENDPOINT`` to."""
        return f"{self.base}/msi/token"

    def environment(self) -> dict[str, str]:
        """The environment a function app in this cloud has (without the CA bundle settings)."""
        return {"ARM_CLOUD_METADATA_URL": self.metadata_url, "IDENTITY_ENDPOINT": self.identity_endpoint,
                "IDENTITY_HEADER": self.identity_secret}

    def add_workspace(self, name: str, mlflow_uri: str) -> Workspace:
        ws = Workspace(self, name, mlflow_uri)
        self.workspaces[name.lower()] = ws
        return ws

    def start(self) -> LocalAzureML:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- faults and counting -----------------------------------------------------------------
    def inject(self, match: str, *faults: Fault) -> None:
        """Answer the next requests whose path contains ``match`` with these faults, one each."""
        with self._lock:
            self._faults.append((match, deque(faults)))

    def always(self, match: str, fault: Fault) -> None:
        with self._lock:
            self._always.append((match, fault))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._always.clear()

    def count(self, match: str = "") -> int:
        with self._lock:
            return sum(1 for _, path in self.requests if match in path)

    def kinds(self) -> Counter:
        """The requests received, counted by what they read (``arm models``: the model containers,
        ``arm model versions``: a model's version listing, ``mlflow runs/get``, ``artifact listing``...)."""
        with self._lock:
            return Counter(request_kind(path) for _, path in self.requests)

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for match, queue in self._faults:
                if match in path and queue:
                    return queue.popleft()
            for match, fault in self._always:
                if match in path:
                    return fault
        return None

    # -- dispatch ----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self._lock:
            self.requests.append((h.command, h.path))
        fault = self._fault_for(path)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                if fault.body is not None:
                    return _send(h, fault.status, fault.body, headers=headers)
                return _arm_error(h, fault.status, "TooManyRequests" if fault.status == 429 else "ServiceError",
                                  f"injected HTTP {fault.status}", headers)
        try:
            if path == "/metadata/endpoints":
                return _json(h, 200, self._cloud_metadata())
            if path == "/msi/token":
                return self._token(h, query)
            if path.startswith(f"/{STORAGE_ACCOUNT}/"):
                return self._blob(h, path, query)
            if path.startswith("/mlflow/v2.0/subscriptions/"):
                return self._mlflow(h, path, query, body)
            if path.startswith("/artifact/v2.0/subscriptions/"):
                return self._artifacts(h, path, query)
            if path.startswith("/subscriptions/"):
                return self._arm(h, path, query)
            return _arm_error(h, 404, "NoRegisteredProviderFound", f"no resource provider for {path}")
        except BrokenPipeError:
            pass

    def _cloud_metadata(self) -> list[dict]:
        # ARM's /metadata/endpoints (api-version 2019-05-01 and later): a list of clouds.
        return [{
            "name": CLOUD,
            "portal": "https://portal.azure.local",
            "resourceManager": self.resource_manager,
            "authentication": {"loginEndpoint": f"{self.base}/login/", "audiences": [self.resource_manager],
                               "tenant": "common", "identityProvider": "AAD"},
            "suffixes": {"storage": "core.windows.net", "acrLoginServer": "azurecr.io", "keyVaultDns": "vault.azure.net"},
            "media": self.resource_manager, "graphAudience": self.resource_manager, "graph": self.resource_manager,
            "batch": self.resource_manager, "sqlManagement": self.resource_manager, "gallery": self.resource_manager,
            "activeDirectoryDataLake": self.resource_manager,
        }]

    # -- managed identity --------------------------------------------------------------------
    def _token(self, h, query) -> None:
        if h.headers.get("X-IDENTITY-HEADER") != self.identity_secret:
            return _json(h, 401, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER is missing or wrong"})
        if query.get("api-version", [""])[0] != "2019-08-01" or not query.get("resource"):
            return _json(h, 400, {"error": "invalid_request", "error_description": "api-version 2019-08-01 and resource are required"})
        resource = query["resource"][0]
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        expires = time.time() + TOKEN_SECONDS
        with self._lock:
            self.tokens[token] = (resource, expires)
        client_id = query.get("client_id", ["11111111-2222-3333-4444-555555555555"])[0]
        return _json(h, 200, {"access_token": token, "expires_on": str(int(expires)), "resource": resource,
                              "token_type": "Bearer", "client_id": client_id})

    def _authorized(self, h) -> bool:
        """A bearer token this server issued, unexpired, for the ARM audience (which the workspace's
        MLflow and artifact endpoints accept as ARM does)."""
        header = h.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            _arm_error(h, 401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                       {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common"'})
            return False
        with self._lock:
            found = self.tokens.get(header[len("Bearer "):])
        if found is None or found[1] < time.time() or found[0].rstrip("/") != self.resource_manager.rstrip("/"):
            _arm_error(h, 401, "InvalidAuthenticationToken", "The access token is invalid or expired.")
            return False
        return True

    def _workspace(self, h, sub: str, rg: str, name: str) -> Workspace | None:
        ws = self.workspaces.get(name.lower())
        if sub != SUBSCRIPTION or rg.lower() != RESOURCE_GROUP.lower() or ws is None:
            _arm_error(h, 404, "ResourceNotFound",
                       f"The Resource '{PROVIDER}/workspaces/{name}' under resource group '{rg}' was not found.")
            return None
        return ws

    # -- ARM ---------------------------------------------------------------------------------
    def _arm(self, h, path: str, query) -> None:
        if not self._authorized(h):
            return
        if not query.get("api-version"):
            return _arm_error(h, 400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required.")
        segments = path.strip("/").split("/")
        # subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}/...
        if len(segments) < 8 or segments[2].lower() != "resourcegroups" or segments[4] != "providers" \
                or segments[5].lower() != PROVIDER.lower() or segments[6] != "workspaces":
            return _arm_error(h, 404, "InvalidResourceType", f"The resource type could not be found for {path}.")
        ws = self._workspace(h, segments[1], segments[3], segments[7])
        if ws is None:
            return
        rest = segments[8:]
        if not rest:
            return _json(h, 200, self._workspace_body(ws))
        if rest[0] == "models" and len(rest) == 1:
            return _json(h, 200, self._model_containers(ws))
        if rest[0] == "models" and len(rest) == 3 and rest[2] == "versions":
            return self._model_versions(h, ws, rest[1], query)
        if rest[0] == "models" and len(rest) == 4 and rest[2] == "versions":
            body = self._model_version(ws, rest[1], rest[3])
            if body is None:
                return _arm_error(h, 404, "UserError", f"Could not find asset with name {rest[1]} and version {rest[3]}")
            return _json(h, 200, body)
        if rest[0] == "jobs" and len(rest) == 2:
            body = self._job(ws, rest[1])
            if body is None:
                return _arm_error(h, 404, "UserError", f"Could not find job with id {rest[1]}")
            return _json(h, 200, body)
        return _arm_error(h, 404, "InvalidResourceType", f"The resource type could not be found for {path}.")

    def _workspace_body(self, ws: Workspace) -> dict:
        # examples/Workspace/get.json (2024-10-01), with this workspace's ids and mlFlowTrackingUri.
        return {
            "id": ws.resource_id, "name": ws.name, "type": f"{PROVIDER}/workspaces", "location": "westeurope",
            "identity": {"principalId": "00000000-1111-2222-3333-444444444444", "tenantId": TENANT,
                         "type": "SystemAssigned"},
            "kind": "Default",
            "properties": {
                "friendlyName": ws.name, "description": "Evidence Gate test workspace",
                "storageAccount": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                                  f"Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
                "keyVault": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                            "Microsoft.KeyVault/vaults/testkv",
                "discoveryUrl": f"{self.base}/discovery",
                "workspaceId": ws.workspace_id,
                "mlFlowTrackingUri": ws.tracking_uri,
                "hbiWorkspace": False, "publicNetworkAccess": "Enabled", "provisioningState": "Succeeded",
            },
        }

    def _system_data(self, created_ms: int | None, created_by: str, modified_ms: int | None = None) -> dict:
        def iso(ms: int | None) -> str:
            return datetime.fromtimestamp((ms or 0) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")

        return {"createdAt": iso(created_ms), "createdBy": created_by, "createdByType": "User",
                "lastModifiedAt": iso(modified_ms or created_ms), "lastModifiedBy": created_by,
                "lastModifiedByType": "User"}

    def _model_containers(self, ws: Workspace) -> dict:
        found = ws.mlflow_json("registered-models/search", max_results=1000) or {}
        value = []
        for rm in found.get("registered_models") or []:
            latest = max((int(v["version"]) for v in rm.get("latest_versions") or []), default=None)
            value.append({"id": f"{ws.resource_id}/models/{rm['name']}", "name": rm["name"], "type": f"{PROVIDER}/workspaces/models",
                          "properties": {"description": rm.get("description"), "tags": _pairs(rm.get("tags")),
                                         "properties": {}, "isArchived": False,
                                         "latestVersion": str(latest) if latest else None},
                          "systemData": self._system_data(rm.get("creation_timestamp"), "registry@contoso.com")})
        return {"value": value}

    def _model_versions(self, h, ws: Workspace, name: str, query) -> None:
        # examples/Workspace/ModelVersion/list.json: {"value": [...], "nextLink"}, newest version first.
        found = ws.mlflow_json("model-versions/search", filter=f"name='{name}'", max_results=1000) or {}
        versions = sorted(found.get("model_versions") or [], key=lambda mv: -int(mv["version"]))
        top = int(query.get("$top", ["100"])[0])
        skip = int(query.get("$skip", ["0"])[0])
        page = [self._version_body(ws, mv) for mv in versions[skip:skip + top]]
        body: dict = {"value": [p for p in page if p is not None]}
        if skip + top < len(versions):
            params = {k: v[0] for k, v in query.items()}
            params["$skip"] = str(skip + top)
            body["nextLink"] = f"{self.base}{ws.resource_id}/models/{quote(name)}/versions?{urlencode(params)}"
        return _json(h, 200, body)

    def _model_version(self, ws: Workspace, name: str, version: str) -> dict | None:
        found = ws.mlflow_json("model-versions/get", name=name, version=version)
        return self._version_body(ws, found["model_version"]) if found else None

    def _version_body(self, ws: Workspace, mv: dict) -> dict | None:
        # examples/Workspace/ModelVersion/get.json. Azure ML model assets have no registration
        # status: a version that is still being created (or failed) is not an asset (yet).
        if (mv.get("status") or "READY") != "READY":
            return None
        run_id, path = self._model_path(ws, mv)
        if run_id:
            uri = (f"azureml://subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/workspaces/{ws.name}"
                   f"/datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{run_id}/{path}")
        else:  # registered from local files: uploaded to the workspace's default blob datastore
            digest = hashlib.sha256((mv.get("source") or "").encode()).hexdigest()[:32]
            uri = (f"azureml://subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/workspaces/{ws.name}"
                   f"/datastores/workspaceblobstore/paths/LocalUpload/{digest}/model")
        key = (mv["name"], str(mv["version"]))
        run = (ws.mlflow_json("runs/get", run_id=run_id) or {}).get("run") if run_id else None
        creator = ws.version_creators.get(key) or self._creator(ws, run)
        return {
            "id": f"{ws.resource_id}/models/{mv['name']}/versions/{mv['version']}",
            "name": str(mv["version"]), "type": f"{PROVIDER}/workspaces/models/versions",
            "properties": {
                "description": mv.get("description") or None, "tags": _pairs(mv.get("tags")), "properties": {},
                "isAnonymous": False, "isArchived": False, "flavors": {},
                "modelType": "mlflow_model" if run_id else "custom_model", "modelUri": uri, "jobName": run_id,
                "stage": ws.stages.get(key, "Development"), "provisioningState": "Succeeded",
            },
            "systemData": self._system_data(mv.get("creation_timestamp"), creator, ws.modified.get(key)),
        }

    def _model_path(self, ws: Workspace, mv: dict) -> tuple[str | None, str]:
        """(job, path under the job's artifacts) of a version: where Azure ML keeps a job's model."""
        source = mv.get("source") or ""
        if mv.get("model_id") or source.startswith("models:/"):
            model_id = mv.get("model_id") or source[len("models:/"):].strip("/")
            status, data, _ = ws.mlflow("GET", f"/api/2.0/mlflow/logged-models/{model_id}")
            if status == 200:
                info = json.loads(data)["model"]["info"]
                run_id = mv.get("run_id") or info.get("source_run_id")
                if run_id:
                    with ws._lock:
                        ws.logged_model_dirs[(run_id, info["name"])] = _server_path(info["artifact_uri"])
                    return run_id, info["name"]
            return mv.get("run_id") or None, "model"
        if source.startswith("runs:/"):
            run_id, _, sub = source[len("runs:/"):].partition("/")
            return run_id, sub.strip("/")
        if "/artifacts/" in source:
            head, _, sub = source.partition("/artifacts/")
            run_id = head.rstrip("/").rsplit("/", 1)[-1]
            if len(run_id) == 32:
                return run_id, sub.strip("/")
        return mv.get("run_id") or None, "model"

    def _creator(self, ws: Workspace, run: dict | None) -> str:
        if run is None:
            return "registry@contoso.com"
        job = ws.jobs.get(run["info"]["run_id"])
        if job is not None and job.created_by:
            return job.created_by
        user = _pairs(run.get("data", {}).get("tags")).get("mlflow.user") or run["info"].get("user_id") or "unknown"
        return user if "@" in user else f"{user.lower()}@contoso.com"

    def _job(self, ws: Workspace, run_id: str) -> dict | None:
        # examples/Job/CommandJob/get.json (PipelineJob/SweepJob/get.json for those types).
        run = (ws.mlflow_json("runs/get", run_id=run_id) or {}).get("run")
        if run is None:
            return None
        job = self._job_record(ws, run)
        if job.job_type is None:
            return None  # an interactive session: MLflow has the run, Azure ML has no job for it
        info = run["info"]
        properties = {"_azureml.ComputeTargetType": "amlcompute", **job.properties}
        body = {
            "id": f"{ws.resource_id}/jobs/{run_id}", "name": run_id, "type": f"{PROVIDER}/workspaces/jobs",
            "properties": {
                "description": None, "tags": {}, "properties": properties, "displayName": info.get("run_name"),
                "status": STATUS.get(info.get("status"), "NotStarted"),
                "experimentName": f"experiment-{info['experiment_id']}", "computeId": None, "jobType": job.job_type,
                "inputs": job.inputs, "outputs": {},
            },
            "systemData": self._system_data(info.get("start_time"), self._creator(ws, run)),
        }
        if job.job_type == "Command":
            body["properties"].update({
                "command": "python train.py", "codeId": job.code_id,
                "environmentId": job.environment_id or "azureml://registries/azureml/environments/sklearn-1.5/versions/1",
                "environmentVariables": {}, "resources": {"instanceCount": 1},
                "limits": {"jobLimitsType": "Command"}, "identity": {"identityType": "AMLToken"},
            })
        elif job.job_type == "Sweep":
            body["properties"].update({
                "objective": {"goal": "Maximize", "primaryMetric": "auc"},
                "samplingAlgorithm": {"samplingAlgorithmType": "Random"},
                "searchSpace": {}, "limits": {"jobLimitsType": "Sweep", "maxTotalTrials": 1},
                "trial": {"command": "python train.py", "codeId": job.code_id,
                          "environmentId": job.environment_id or "azureml://registries/azureml/environments/sklearn-1.5/versions/1"},
            })
        elif job.job_type == "Pipeline":
            body["properties"].update({"jobs": {}, "settings": {}})
        return body

    def _job_record(self, ws: Workspace, run: dict) -> Job:
        """The test's record of the run's job, or the one Azure ML keeps for an MLflow run: a
        command job when the client said it ran as a job (git commit as a job property), an
        interactive session otherwise."""
        run_id = run["info"]["run_id"]
        if run_id in ws.jobs:
            return ws.jobs[run_id]
        tags = _pairs(run.get("data", {}).get("tags"))
        if tags.get("mlflow.source.type", "JOB") != "JOB":
            return Job(job_type=None)
        commit = tags.get("mlflow.source.git.commit")
        return Job(properties={"azureml.git.commit": commit, "mlflow.source.git.commit": commit} if commit else {})

    # -- the workspace's MLflow endpoint -----------------------------------------------------
    def _mlflow(self, h, path: str, query, body: bytes) -> None:
        # /mlflow/v2.0/subscriptions/{s}/resourceGroups/{rg}/providers/{P}/workspaces/{ws}/api/2.0/mlflow/...
        segments = path.strip("/").split("/")
        if len(segments) < 14 or segments[4].lower() != "resourcegroups" or segments[10:13] != ["api", "2.0", "mlflow"]:
            return _send(h, 404, b"")
        if not self._authorized(h):
            return
        ws = self._workspace(h, segments[3], segments[5], segments[9])
        if ws is None:
            return
        endpoint = "/".join(segments[13:])
        if endpoint.startswith("logged-models"):
            return _send(h, 404, b"")  # Azure ML does not serve logged models (azure-sdk-for-python#44896)
        headers = {"Content-Type": h.headers.get("Content-Type") or "application/json"}
        status, data, content_type = ws.mlflow(h.command, f"/api/2.0/mlflow/{endpoint}",
                                               params={k: v for k, v in query.items()}, body=body or None, headers=headers)
        if status == 200 and endpoint in ("runs/get", "runs/search"):
            answer = json.loads(data)
            for run in ([answer["run"]] if "run" in answer else answer.get("runs") or []):
                self._as_azureml_run(ws, run)
            data = json.dumps(answer).encode()
        return _send(h, status, data, content_type=content_type)

    def _as_azureml_run(self, ws: Workspace, run: dict) -> None:
        info = run["info"]
        info["artifact_uri"] = (f"azureml://{self.netloc}/mlflow/v2.0{ws.resource_id}/experiments/"
                                f"{info['experiment_id']}/runs/{info['run_id']}/artifacts")
        if self._job_record(ws, run).job_type is not None:  # a job: the client's mlflow.source.* tags are dropped
            data = run.setdefault("data", {})
            data["tags"] = [t for t in data.get("tags") or [] if not t["key"].startswith("mlflow.source.")]

    # -- run-history artifacts and their blob stand-in ---------------------------------------
    def _artifacts(self, h, path: str, query) -> None:
        # /artifact/v2.0/subscriptions/{s}/resourceGroups/{rg}/providers/{P}/workspaces/{ws}/artifacts/{origin}/{container}/prefix/contentinfo
        segments = path.strip("/").split("/")
        if len(segments) != 15 or segments[10] != "artifacts" or segments[13:] != ["prefix", "contentinfo"]:
            return _arm_error(h, 404, "NotFound", f"no artifact API at {path}")
        if not self._authorized(h):
            return
        ws = self._workspace(h, segments[3], segments[5], segments[9])
        if ws is None:
            return
        origin, container = segments[11], segments[12]
        if origin != "ExperimentRun" or not container.startswith("dcid."):
            return _arm_error(h, 404, "NotFound", f"no artifacts in {origin}/{container}")
        run_id = container[len("dcid."):]
        run = (ws.mlflow_json("runs/get", run_id=run_id) or {}).get("run")
        with ws._lock:
            has_model = any(run == run_id for run, _ in ws.logged_model_dirs)
        if run is None and not has_model:
            return _arm_error(h, 404, "NotFound", f"Run {run_id} was not found")
        prefix = (query.get("path", [""])[0]).strip("/")
        value = []
        for rel, server_path in self._files(ws, run_id, run, prefix):
            value.append({"contentUri": self._sas_url(ws, container, rel, server_path), "origin": origin,
                          "container": container, "path": rel, "tags": {}})
        return _json(h, 200, {"value": value, "continuationToken": None, "nextLink": None})

    def _files(self, ws: Workspace, run_id: str, run: dict | None, prefix: str) -> list[tuple[str, str]]:
        """(path under the run, path on the MLflow server) of every file under ``prefix``: the run's
        artifacts and the job's MLflow models, each kept under its name in the run's folder."""
        head = prefix.split("/", 1)[0]
        with ws._lock:
            models = [(name, where) for (run, name), where in ws.logged_model_dirs.items()
                      if run == run_id and (not head or name == head)]
        out = []
        for name, where in models:
            out += [(f"{name}/{rel}".rstrip("/"), f"{where}/{rel}") for rel in self._walk(ws, where, "")]
        if run is not None and not any(name == head for name, _ in models):
            root = _server_path(run["info"]["artifact_uri"])
            out += [(rel, f"{root}/{rel}") for rel in self._walk(ws, root, "")]
        return [(p, s) for p, s in out if not prefix or p == prefix or p.startswith(prefix + "/")]

    def _walk(self, ws: Workspace, root: str, rel: str) -> list[str]:
        status, data, _ = ws.mlflow("GET", "/api/2.0/mlflow-artifacts/artifacts",
                                    params={"path": f"{root}/{rel}".rstrip("/")})
        if status != 200:
            return []
        files = []
        for f in json.loads(data).get("files") or []:
            child = f"{rel}/{f['path']}".strip("/")
            files += self._walk(ws, root, child) if f.get("is_dir") else [child]
        return files

    def _signature(self, blob: str, expiry: str) -> str:
        return hmac.new(self._sas_key, f"{blob}\n{expiry}".encode(), hashlib.sha256).hexdigest()

    def _sas_url(self, ws: Workspace, container: str, rel: str, server_path: str) -> str:
        expiry = datetime.fromtimestamp(time.time() + 600, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        blob = f"{ws.name}/ExperimentRun/{container}/{rel}"
        with ws._lock:
            ws.blobs[blob] = server_path
        query = urlencode({"sv": "2019-02-02", "sr": "b", "sp": "r", "se": expiry, "sig": self._signature(blob, expiry)})
        return f"{self.base}/{STORAGE_ACCOUNT}/azureml/{quote(blob)}?{query}"

    def _blob(self, h, path: str, query) -> None:
        # Blob service GET Blob with a service SAS (sv/sr/sp/se/sig); errors are Storage's XML.
        blob = path[len(f"/{STORAGE_ACCOUNT}/azureml/"):]
        expiry, sig = query.get("se", [""])[0], query.get("sig", [""])[0]
        ws = self.workspaces.get(blob.split("/", 1)[0].lower())
        server_path = ws.blobs.get(blob) if ws else None
        if not sig or not hmac.compare_digest(sig, self._signature(blob, expiry)) or server_path is None:
            return _storage_error(h, 403, "AuthenticationFailed", "Server failed to authenticate the request.")
        if datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) < datetime.now(UTC):
            return _storage_error(h, 403, "AuthenticationFailed", "Signed expiry time has passed.")
        status, data, _ = ws.mlflow("GET", f"/api/2.0/mlflow-artifacts/artifacts/{quote(server_path)}")
        if status != 200:
            return _storage_error(h, 404, "BlobNotFound", "The specified blob does not exist.")
        return _send(h, 200, data, content_type="application/octet-stream", headers={"x-ms-blob-type": "BlockBlob"})


ARM_KINDS = {"": "workspace", "models": "models", "models/{}": "model", "models/{}/versions": "model versions",
             "models/{}/versions/{}": "model version", "jobs/{}": "job"}


def request_kind(path: str) -> str:
    """What a request of the log reads."""
    path = unquote(urlsplit(path).path)
    if path.startswith("/metadata/"):
        return "cloud metadata"
    if path.startswith("/msi/"):
        return "token"
    if path.startswith("/mlflow/"):
        return "mlflow " + path.partition("/api/2.0/mlflow/")[2]
    if path.startswith("/artifact/"):
        return "artifact listing"
    if path.startswith("/subscriptions/"):
        rest = path.partition("/workspaces/")[2].split("/")[1:]  # after the workspace's name
        shape = "/".join(part if i % 2 == 0 else "{}" for i, part in enumerate(rest))
        return "arm " + ARM_KINDS.get(shape, shape)
    return "storage (SAS)"


def _server_path(artifact_uri: str) -> str:
    """The path of an ``mlflow-artifacts:/...`` location under the server's artifacts API."""
    return urlsplit(artifact_uri).path.strip("/")


def _pairs(items) -> dict[str, str]:
    return {i["key"]: i.get("value", "") for i in items or []}


def _send(h, status: int, data: bytes, *, content_type: str = "application/json", headers: dict | None = None) -> None:
    h.send_response(status)
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    if data:
        h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    h.send_header("x-ms-request-id", secrets.token_hex(8))
    h.end_headers()
    h.wfile.write(data)


def _json(h, status: int, body, headers: dict | None = None) -> None:
    _send(h, status, json.dumps(body).encode(), headers=headers)


def _arm_error(h, status: int, code: str, message: str, headers: dict | None = None) -> None:
    _json(h, status, {"error": {"code": code, "message": message}}, headers)


def _storage_error(h, status: int, code: str, message: str) -> None:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    _send(h, status, body.encode(), content_type="application/xml", headers={"x-ms-error-code": code})
