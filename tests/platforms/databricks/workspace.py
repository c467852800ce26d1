"""A local Databricks workspace for the tests: a threaded HTTP server on loopback that answers the
Databricks REST endpoints Evidence Gate reads, backed by a real open-source MLflow server.

Every answer is built from the platform's own types, never shaped after what Evidence Gate sends:
databricks-sdk dataclasses (``.as_dict()``) for the Databricks APIs, MLflow's Unity Catalog
protos (``databricks_uc_registry_messages.proto``) for MLflow's ``/mlflow/unity-catalog/`` paths.
Each handler cites the page or source file it follows. Where Databricks is stricter than
open-source MLflow, this workspace is strict too:

- every ``/api/`` request needs ``Authorization: Bearer`` with the workspace's PAT or a token
  its OAuth endpoint issued (401 otherwise);
- Unity Catalog names are three-level (``catalog.schema.model``); version search needs a
  ``name=`` or ``run_id=`` filter and refuses ``order_by``; model search refuses both;
- run artifacts live at ``dbfs:/databricks/mlflow-tracking/<exp>/<run>/artifacts`` and logged
  models at ``dbfs:/databricks/mlflow-tracking/<exp>/logged_models/<id>/artifacts``, served by the
  Files API, which answers 404 for a directory that does not exist;
- the workspace registry has stages and transition requests, no aliases.

Faults (:meth:`LocalDatabricks.fail`): a status (429 with ``Retry-After``, 403
``PERMISSION_DENIED``, 5xx) or a delay on requests whose path contains a text; runs that live in
another workspace (:attr:`LocalDatabricks.foreign_runs`: their UC versions name the other
workspace, and ``runs/get`` answers 404 here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import requests
from databricks.sdk.service import catalog, files, jobs, ml
from google.protobuf import json_format
from mlflow.protos import databricks_artifacts_pb2 as artifacts_proto
from mlflow.protos import databricks_uc_registry_messages_pb2 as uc_proto
from mlflow.protos import service_pb2 as mlflow_proto

WORKSPACE_ID = "1234567890123456"
OTHER_WORKSPACE_ID = "6543210987654321"
CATALOG, SCHEMA = "main", "ml"
UC_OWNER = "ml-platform@contoso.com"
TRACKING_ROOT = "dbfs:/databricks/mlflow-tracking"
FILES_ROOT = "/WorkspaceInternal/Mlflow/Artifacts"


@dataclass
class Fault:
    match: str  # a text the request path contains
    status: int | None = None
    retry_after: int | None = None
    error_code: str | None = None
    delay: float = 0.0
    times: int | None = None  # None: every matching request


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message, self.headers = status, error_code, message, headers or {}


def _not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


class LocalDatabricks:
    """One workspace. ``token`` is its personal access token; ``client_id`` / ``client_secret`` a
    service principal that may use OAuth M2M."""

    def __init__(self, upstream: str, *, token: str = "dapi-local-test-token", client_id: str = "sp-evidence-gate",
                 client_secret: str = "local-sp-secret", workspace_id: str = WORKSPACE_ID):
        self.upstream = upstream.rstrip("/")
        self.workspace_id = workspace_id
        self.token, self.client_id, self.client_secret = token, client_id, client_secret
        self.issued: dict[str, float] = {}  # OAuth access token -> expiry (epoch s)
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.foreign_runs: set[str] = set()
        self.job_runs: dict[int, jobs.Run] = {}
        self.transition_requests: dict[tuple[str, str], list[ml.Activity]] = {}
        self.schemas: set[tuple[str, str]] = {(CATALOG, SCHEMA)}  # (catalog, schema) pairs of the metastore
        self.presign_seconds = 300.0  # how long a presigned artifact URL it hands out is valid
        self._signing_key = secrets.token_bytes(32)
        # (UC name, version) -> the version's MLflow 3 deployment job state
        self.deployment_jobs: dict[tuple[str, str], uc_proto.ModelVersionDeploymentJobState] = {}
        self._lock = threading.Lock()
        self._http = requests.Session()
        workspace = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                workspace._serve(self)

            do_GET = do_POST = do_HEAD = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle and test controls -----------------------------------------------------------
    def start(self) -> LocalDatabricks:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.foreign_runs.clear()
            self.deployment_jobs.clear()
            self.presign_seconds = 300.0

    def fail(self, match: str, *, status: int | None = None, retry_after: int | None = None,
             error_code: str | None = None, delay: float = 0.0, times: int | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(match, status, retry_after, error_code, delay, times))

    def count(self, contains: str = "") -> int:
        with self._lock:
            return sum(1 for _, path in self.requests if contains in path)

    @staticmethod
    def uc_name(model: str) -> str:
        """The Unity Catalog name of an open-source model name: ``main.ml.<name>``, except that a model
        named ``<catalog>.<schema>.<model>`` underneath lives in that schema (see :attr:`schemas`)."""
        parts = model.split(".")
        if len(parts) == 3 and all(parts):
            return model
        return f"{CATALOG}.{SCHEMA}.{model}"

    # -- HTTP plumbing --------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        path, query = parts.path, {k: v for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((h.command, h.path))
            fault = next((f for f in self.faults if f.match in path and f.times != 0), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
        try:
            if fault is not None:
                time.sleep(fault.delay)
                if fault.status:
                    code = fault.error_code or {429: "REQUEST_LIMIT_EXCEEDED", 403: "PERMISSION_DENIED"}.get(
                        fault.status, "TEMPORARILY_UNAVAILABLE")
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    raise ApiError(fault.status, code, "injected by the test", headers)
            status, body, headers = self._route(h.command, path, query, raw, h.headers)
        except ApiError as exc:
            # Databricks error body: {"error_code": ..., "message": ...}
            # (https://docs.databricks.com/api/workspace/introduction, "Errors")
            status, headers = exc.status, {"Content-Type": "application/json", **exc.headers}
            body = json.dumps({"error_code": exc.error_code, "message": exc.message}).encode()
        try:
            h.send_response(status)
            for key, value in headers.items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a slow-answer test)
            h.close_connection = True

    def _route(self, method: str, path: str, query: dict, raw: bytes, headers) -> tuple[int, bytes, dict]:
        if path == "/.well-known/databricks-config":
            return self._json(self.host_metadata())
        if path == "/oidc/.well-known/oauth-authorization-server":
            return self._json(self.oidc_discovery())
        if path == "/oidc/v1/token" and method == "POST":
            return self._json(self.token_endpoint(raw, headers))
        if path.startswith("/presigned/") and method == "GET":  # cloud storage: no workspace credentials
            return self.presigned_download(path, query)
        if not path.startswith("/api/"):
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        self._authenticate(headers)
        args = {k: v[0] for k, v in query.items()}
        if method == "POST" and raw:
            args.update(json.loads(raw))
        for pattern, verb, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                result = handler(args, *[unquote(g) for g in match.groups()])
                if isinstance(result, tuple):  # a file download
                    return result
                return self._json(result)
        # what Databricks answers for a path it does not serve
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    @staticmethod
    def _json(data: dict) -> tuple[int, bytes, dict]:
        return 200, json.dumps(data).encode(), {"Content-Type": "application/json"}

    def _routes(self):
        uc = "/api/2.0/mlflow/unity-catalog"
        return [
            # Unity Catalog REST API (https://docs.databricks.com/api/workspace/registeredmodels,
            # .../modelversions); databricks-sdk service/catalog.py RegisteredModelsAPI / ModelVersionsAPI
            (r"/api/2\.1/unity-catalog/models", "GET", self.uc_list_models),
            (r"/api/2\.1/unity-catalog/schemas", "GET", self.uc_list_schemas),
            (r"/api/2\.1/unity-catalog/models/([^/]+)", "GET", self.uc_get_model),
            (r"/api/2\.1/unity-catalog/models/([^/]+)/versions", "GET", self.uc_list_versions),
            (r"/api/2\.1/unity-catalog/models/([^/]+)/versions/(\d+)", "GET", self.uc_get_version),
            (r"/api/2\.1/unity-catalog/models/([^/]+)/aliases/([^/]+)", "GET", self.uc_get_by_alias),
            # MLflow's Unity Catalog registry paths (mlflow/protos/databricks_uc_registry_service.proto,
            # mlflow/store/_unity_catalog/registry/rest_store.py)
            (rf"{uc}/model-versions/get", "GET", self.mluc_get_version),
            (rf"{uc}/model-versions/search", "GET", self.mluc_search_versions),
            (rf"{uc}/registered-models/get", "GET", self.mluc_get_model),
            (rf"{uc}/registered-models/search", "GET", self.mluc_search_models),
            # Workspace Model Registry (https://docs.databricks.com/api/workspace/modelregistry;
            # databricks-sdk service/ml.py ModelRegistryAPI)
            (r"/api/2\.0/mlflow/model-versions/get", "GET", self.ws_get_version),
            (r"/api/2\.0/mlflow/model-versions/search", "GET", self.ws_search_versions),
            (r"/api/2\.0/mlflow/databricks/registered-models/get", "GET", self.ws_get_model),
            (r"/api/2\.0/mlflow/registered-models/search", "GET", self.ws_search_models),
            (r"/api/2\.0/mlflow/transition-requests/list", "GET", self.ws_list_transition_requests),
            # MLflow tracking (https://docs.databricks.com/api/workspace/experiments; service/ml.py ExperimentsAPI)
            (r"/api/2\.0/mlflow/runs/get", "GET", self.get_run),
            (r"/api/2\.0/mlflow/experiments/search", "POST", self.search_experiments),
            (r"/api/2\.0/mlflow/runs/search", "POST", self.search_runs),
            (r"/api/2\.0/mlflow/logged-models/([^/]+)", "GET", self.get_logged_model),
            # MLflow's artifact APIs, MLflow's Databricks artifact repository's way to artifacts
            # (mlflow/store/artifact/databricks_artifact_repo_resources.py _Run / _LoggedModel;
            # service.proto ListArtifacts, ListLoggedModelArtifacts; databricks_artifacts.proto)
            (r"/api/2\.0/mlflow/artifacts/list", "GET", self.list_run_artifacts),
            (r"/api/2\.0/mlflow/logged-models/([^/]+)/artifacts/directories", "GET", self.list_logged_model_artifacts),
            (r"/api/2\.0/mlflow/artifacts/credentials-for-read", "POST", self.credentials_for_read),
            (r"/api/2\.0/mlflow/logged-models/([^/]+)/artifacts/credentials-for-download", "POST",
             self.credentials_for_download),
            # Files API (https://docs.databricks.com/api/workspace/files; service/files.py FilesAPI)
            (r"/api/2\.0/fs/directories(/.*)", "GET", self.list_directory),
            (r"/api/2\.0/fs/directories(/.*)", "HEAD", self.directory_metadata),
            (r"/api/2\.0/fs/files(/.*)", "GET", self.download),
            # Jobs API 2.2, and 2.1 (https://docs.databricks.com/api/workspace/jobs/getrun; databricks-sdk
            # service/jobs.py JobsAPI.get_run calls /api/2.2/jobs/runs/get)
            (r"/api/2\.[12]/jobs/runs/get", "GET", self.jobs_get_run),
        ]

    # -- authentication -------------------------------------------------------------------------
    def host_metadata(self) -> dict:
        # databricks-sdk oauth.py HostMetadata / get_host_metadata: {host}/.well-known/databricks-config
        return {"oidc_endpoint": f"{self.host}/oidc", "workspace_id": self.workspace_id, "cloud": "azure"}

    def oidc_discovery(self) -> dict:
        # databricks-sdk oauth.py get_workspace_endpoints / OidcEndpoints.from_dict; RFC 8414 metadata
        return {"authorization_endpoint": f"{self.host}/oidc/v1/authorize", "token_endpoint": f"{self.host}/oidc/v1/token",
                "issuer": f"{self.host}/oidc"}

    def token_endpoint(self, raw: bytes, headers) -> dict:
        # OAuth M2M (https://docs.databricks.com/aws/en/dev-tools/auth/oauth-m2m): client_credentials
        # grant, client id and secret as HTTP Basic (databricks-sdk oauth.py retrieve_token, use_header=True)
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        auth = headers.get("Authorization") or ""
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "invalid_request", "grant_type must be client_credentials")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            raise ApiError(401, "invalid_client", "Client authentication failed")
        token = "eyJ-local-" + secrets.token_hex(16)
        with self._lock:
            self.issued[token] = time.time() + 3600
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope", "all-apis")}

    def _authenticate(self, headers) -> None:
        auth = headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else None
        with self._lock:
            ok = token == self.token or (token in self.issued and self.issued[token] > time.time())
        if not ok:
            raise ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")

    # -- the open-source server underneath ------------------------------------------------------
    def _up(self, method: str, endpoint: str, *, params=None, body=None) -> dict:
        resp = self._http.request(method, f"{self.upstream}/api/2.0/mlflow/{endpoint}", params=params, json=body,
                                  timeout=30)
        data = resp.json() if resp.content else {}
        if resp.status_code != 200:
            raise ApiError(resp.status_code, data.get("error_code", "INTERNAL_ERROR"), data.get("message", ""))
        return data

    @staticmethod
    def _dbfs(uri: str | None) -> str | None:
        """An open-source artifact URI as Databricks writes it (mlflow-artifacts:/<exp>/<run>/artifacts
        -> dbfs:/databricks/mlflow-tracking/<exp>/<run>/artifacts; <exp>/models/<id> -> logged_models/<id>)."""
        if not uri or not uri.startswith("mlflow-artifacts:/"):
            return uri
        rest = uri[len("mlflow-artifacts:/"):].lstrip("/")
        rest = re.sub(r"^([^/]+)/models/(m-[^/]+)", r"\1/logged_models/\2", rest)
        return f"{TRACKING_ROOT}/{rest}"

    def _upstream_path(self, files_path: str) -> str:
        """A Files API path (mlflow databricks_run_artifact_repo.py / databricks_logged_model_artifact_repo.py
        _build_root_path) as the open-source server's artifact path; the runs of another workspace
        (and their logged models) are not here."""
        if not files_path.startswith(FILES_ROOT + "/"):
            raise ApiError(403, "PERMISSION_DENIED", f"User does not have READ on {files_path}")
        rest = files_path[len(FILES_ROOT) + 1:]
        match = re.fullmatch(r"([^/]+)/(Runs|LoggedModels)/([^/]+)(/.*)?", rest)
        if not match:
            raise _not_found(f"The directory being accessed is not found: {files_path}")
        exp, kind, ident, tail = match.groups()
        if (ident if kind == "Runs" else self._model_run(ident)) in self.foreign_runs:
            raise _not_found(f"The directory being accessed is not found: {files_path}")
        return f"{exp}/{ident}{tail or ''}" if kind == "Runs" else f"{exp}/models/{ident}{tail or ''}"

    def _model_run(self, model_id: str) -> str | None:
        model = self._up("GET", f"logged-models/{quote(model_id, safe='')}")["model"]
        return model["info"].get("source_run_id")

    # -- Unity Catalog names --------------------------------------------------------------------
    def _short(self, full_name: str) -> str:
        """The open-source model name of a Unity Catalog name (the inverse of :meth:`uc_name`)."""
        parts = full_name.split(".")
        if len(parts) != 3 or not all(parts):
            raise _invalid(f"Invalid name '{full_name}': a Unity Catalog model name is catalog.schema.model")
        if (parts[0], parts[1]) not in self.schemas:
            raise _not_found(f"Catalog '{parts[0]}' or schema '{parts[1]}' does not exist.")
        return parts[2] if (parts[0], parts[1]) == (CATALOG, SCHEMA) else full_name

    def _run_workspace(self, run_id: str | None) -> str:
        return OTHER_WORKSPACE_ID if run_id in self.foreign_runs else self.workspace_id

    # -- Unity Catalog REST API 2.1 -------------------------------------------------------------
    def _uc_model_info(self, rm: dict) -> dict:
        full_name = self.uc_name(rm["name"])
        catalog_name, schema_name, name = full_name.split(".")
        return catalog.RegisteredModelInfo(
            name=name, catalog_name=catalog_name, schema_name=schema_name, full_name=full_name,
            owner=UC_OWNER, comment=rm.get("description"), created_at=int(rm.get("creation_timestamp") or 0),
            updated_at=int(rm.get("last_updated_timestamp") or 0), created_by=rm.get("user_id") or UC_OWNER,
            aliases=[catalog.RegisteredModelAlias(alias_name=a["alias"], version_num=int(a["version"]))
                     for a in rm.get("aliases") or []],
        ).as_dict()

    def _uc_version_info(self, mv: dict) -> dict:
        status = {"READY": catalog.ModelVersionInfoStatus.READY,
                  "PENDING_REGISTRATION": catalog.ModelVersionInfoStatus.PENDING_REGISTRATION,
                  "FAILED_REGISTRATION": catalog.ModelVersionInfoStatus.FAILED_REGISTRATION}[mv.get("status") or "READY"]
        catalog_name, schema_name, name = self.uc_name(mv["name"]).split(".")
        return catalog.ModelVersionInfo(
            model_name=name, catalog_name=catalog_name, schema_name=schema_name, version=int(mv["version"]),
            source=self._dbfs(mv.get("source")), run_id=mv.get("run_id"),
            run_workspace_id=int(self._run_workspace(mv.get("run_id"))), status=status, comment=mv.get("description"),
            created_at=int(mv.get("creation_timestamp") or 0), updated_at=int(mv.get("last_updated_timestamp") or 0),
            created_by=mv.get("user_id") or UC_OWNER,
        ).as_dict()

    def uc_list_models(self, args: dict) -> dict:
        # GET /api/2.1/unity-catalog/models (https://docs.databricks.com/api/workspace/registeredmodels/list;
        # service/catalog.py RegisteredModelsAPI.list): the models of one schema (catalog_name and
        # schema_name, each requiring the other; pages of up to 10,000), or every model the caller
        # may see (pages of 100 by default, at most 1,000)
        if bool(args.get("catalog_name")) != bool(args.get("schema_name")):
            raise _invalid("catalog_name and schema_name must be specified together")
        if args.get("catalog_name"):
            return self._uc_schema_models(args["catalog_name"], args["schema_name"])
        params = {"max_results": min(int(args.get("max_results") or 100), 1000)}
        if args.get("page_token"):
            params["page_token"] = args["page_token"]
        data = self._up("GET", "registered-models/search", params=params)
        out = {"registered_models": [self._uc_model_info(rm) for rm in data.get("registered_models") or []]}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def _uc_schema_models(self, catalog_name: str, schema_name: str) -> dict:
        if (catalog_name, schema_name) not in self.schemas:
            raise _not_found(f"Schema '{catalog_name}.{schema_name}' does not exist.")
        models, token = [], None
        while True:
            data = self._up("GET", "registered-models/search",
                            params={"max_results": 1000, **({"page_token": token} if token else {})})
            models += [self._uc_model_info(rm) for rm in data.get("registered_models") or []]
            token = data.get("next_page_token")
            if not token:
                break
        return {"registered_models": [m for m in models
                                      if (m["catalog_name"], m["schema_name"]) == (catalog_name, schema_name)]}

    def uc_list_schemas(self, args: dict) -> dict:
        # GET /api/2.1/unity-catalog/schemas (https://docs.databricks.com/api/workspace/schemas/list;
        # service/catalog.py SchemasAPI.list): catalog_name required
        catalog_name = args.get("catalog_name") or ""
        if not catalog_name:
            raise _invalid("catalog_name is required")
        names = sorted(schema for cat, schema in self.schemas if cat == catalog_name)
        if not names:
            raise _not_found(f"Catalog '{catalog_name}' does not exist.")
        infos = [catalog.SchemaInfo(name=name, catalog_name=catalog_name, full_name=f"{catalog_name}.{name}",
                                    owner=UC_OWNER) for name in names]
        return {"schemas": [info.as_dict() for info in infos]}

    def uc_get_model(self, args: dict, full_name: str) -> dict:
        rm = self._up("GET", "registered-models/get", params={"name": self._short(full_name)})["registered_model"]
        return self._uc_model_info(rm)

    def uc_list_versions(self, args: dict, full_name: str) -> dict:
        name = self._short(full_name)
        params = {"filter": f"name='{name}'", "max_results": min(int(args.get("max_results") or 100), 1000)}
        if args.get("page_token"):
            params["page_token"] = args["page_token"]
        data = self._up("GET", "model-versions/search", params=params)
        out = {"model_versions": [self._uc_version_info(mv) for mv in data.get("model_versions") or []]}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def uc_get_version(self, args: dict, full_name: str, version: str) -> dict:
        mv = self._up("GET", "model-versions/get", params={"name": self._short(full_name), "version": version})
        return self._uc_version_info(mv["model_version"])

    def uc_get_by_alias(self, args: dict, full_name: str, alias: str) -> dict:
        mv = self._up("GET", "registered-models/alias", params={"name": self._short(full_name), "alias": alias})
        return self._uc_version_info(mv["model_version"])

    # -- MLflow's Unity Catalog registry paths --------------------------------------------------
    def _proto(self, message) -> dict:
        return json_format.MessageToDict(message, preserving_proto_field_name=True)

    def _mluc_version(self, mv: dict) -> dict:
        status = {"READY": "READY", "PENDING_REGISTRATION": "PENDING_REGISTRATION",
                  "FAILED_REGISTRATION": "FAILED_REGISTRATION"}[mv.get("status") or "READY"]
        message = uc_proto.ModelVersion(
            name=self.uc_name(mv["name"]), version=str(mv["version"]),
            creation_timestamp=int(mv.get("creation_timestamp") or 0),
            last_updated_timestamp=int(mv.get("last_updated_timestamp") or 0),
            user_id=mv.get("user_id") or UC_OWNER, description=mv.get("description") or "",
            source=self._dbfs(mv.get("source")) or "", run_id=mv.get("run_id") or "",
            run_tracking_server_id=self._run_workspace(mv.get("run_id")) if mv.get("run_id") else "",
            status=uc_proto.ModelVersionStatus.Value(status), status_message=mv.get("status_message") or "",
            model_id=mv.get("model_id") or "",
            aliases=[uc_proto.RegisteredModelAlias(alias=a, version=str(mv["version"])) for a in mv.get("aliases") or []],
            tags=[uc_proto.ModelVersionTag(key=t["key"], value=t.get("value", "")) for t in mv.get("tags") or []],
            deployment_job_state=self.deployment_jobs.get((self.uc_name(mv["name"]), str(mv["version"]))),
        )
        return self._proto(message)

    def _mluc_model(self, rm: dict) -> dict:
        message = uc_proto.RegisteredModel(
            name=self.uc_name(rm["name"]), creation_timestamp=int(rm.get("creation_timestamp") or 0),
            last_updated_timestamp=int(rm.get("last_updated_timestamp") or 0), user_id=rm.get("user_id") or UC_OWNER,
            description=rm.get("description") or "",
            aliases=[uc_proto.RegisteredModelAlias(alias=a["alias"], version=str(a["version"])) for a in rm.get("aliases") or []],
            tags=[uc_proto.RegisteredModelTag(key=t["key"], value=t.get("value", "")) for t in rm.get("tags") or []],
        )
        return self._proto(message)

    def mluc_get_version(self, args: dict) -> dict:
        name = self._short(args.get("name") or "")
        mv = self._up("GET", "model-versions/get", params={"name": name, "version": args.get("version")})
        return {"model_version": self._mluc_version(mv["model_version"])}

    def mluc_get_model(self, args: dict) -> dict:
        rm = self._up("GET", "registered-models/get", params={"name": self._short(args.get("name") or "")})
        return {"registered_model": self._mluc_model(rm["registered_model"])}

    def mluc_search_versions(self, args: dict) -> dict:
        # UC supports one condition, name='<full name>' or run_id='<id>', and no order_by
        # (rest_store.py search_model_versions: _require_arg_unspecified("order_by"))
        if "order_by" in args:
            raise _invalid("order_by is not supported for Unity Catalog model version search")
        text = (args.get("filter") or "").strip()
        by_name = re.fullmatch(r"name\s*=\s*'([^']+)'", text)
        by_run = re.fullmatch(r"run_id\s*=\s*'([0-9a-f]+)'", text)
        if by_name:
            up_filter = f"name='{self._short(by_name.group(1))}'"
        elif by_run:
            up_filter = f"run_id='{by_run.group(1)}'"
        else:
            raise _invalid("Unity Catalog model version search needs a filter name='<catalog.schema.model>'"
                           " or run_id='<run id>'")
        params = {"filter": up_filter, "max_results": min(int(args.get("max_results") or 100), 1000)}
        if args.get("page_token"):
            params["page_token"] = args["page_token"]
        data = self._up("GET", "model-versions/search", params=params)
        out = {"model_versions": [self._mluc_version(mv) for mv in data.get("model_versions") or []]}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def mluc_search_models(self, args: dict) -> dict:
        # rest_store.py search_registered_models: filter_string and order_by unsupported
        if args.get("filter") or "order_by" in args:
            raise _invalid("filter and order_by are not supported for Unity Catalog registered model search")
        params = {"max_results": min(int(args.get("max_results") or 100), 1000)}
        if args.get("page_token"):
            params["page_token"] = args["page_token"]
        data = self._up("GET", "registered-models/search", params=params)
        out = {"registered_models": [self._mluc_model(rm) for rm in data.get("registered_models") or []]}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    # -- Workspace Model Registry ---------------------------------------------------------------
    def _ws_version(self, mv: dict) -> dict:
        shaped = dict(mv, source=self._dbfs(mv.get("source")))
        return ml.ModelVersion.from_dict(shaped).as_dict()  # no aliases, no model id: not in the workspace registry

    def ws_get_version(self, args: dict) -> dict:
        mv = self._up("GET", "model-versions/get", params={"name": args.get("name"), "version": args.get("version")})
        return {"model_version": self._ws_version(mv["model_version"])}

    def ws_search_versions(self, args: dict) -> dict:
        params = {k: args[k] for k in ("filter", "max_results", "page_token", "order_by") if args.get(k)}
        data = self._up("GET", "model-versions/search", params=params)
        out = {"model_versions": [self._ws_version(mv) for mv in data.get("model_versions") or []]}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def ws_get_model(self, args: dict) -> dict:
        # GET /api/2.0/mlflow/databricks/registered-models/get -> GetModelResponse.registered_model_databricks
        rm = self._up("GET", "registered-models/get", params={"name": args.get("name")})["registered_model"]
        model = ml.ModelDatabricks(
            name=rm["name"], id=f"rm-{abs(hash(rm['name'])) % 10**12}", description=rm.get("description"),
            creation_timestamp=rm.get("creation_timestamp"), last_updated_timestamp=rm.get("last_updated_timestamp"),
            user_id=rm.get("user_id"), permission_level=ml.PermissionLevel.CAN_READ,
            latest_versions=[ml.ModelVersion.from_dict(self._ws_version(mv)) for mv in rm.get("latest_versions") or []],
            tags=[ml.ModelTag(key=t["key"], value=t.get("value")) for t in rm.get("tags") or []],
        )
        return {"registered_model_databricks": model.as_dict()}

    def ws_search_models(self, args: dict) -> dict:
        params = {k: args[k] for k in ("filter", "max_results", "page_token", "order_by") if args.get(k)}
        data = self._up("GET", "registered-models/search", params=params)
        models = [ml.Model(name=rm["name"], creation_timestamp=rm.get("creation_timestamp"),
                           last_updated_timestamp=rm.get("last_updated_timestamp"), user_id=rm.get("user_id"),
                           description=rm.get("description")).as_dict() for rm in data.get("registered_models") or []]
        out = {"registered_models": models}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def ws_list_transition_requests(self, args: dict) -> dict:
        # GET /api/2.0/mlflow/transition-requests/list: the open requests of a version
        key = (args.get("name") or "", args.get("version") or "")
        return {"requests": [a.as_dict() for a in self.transition_requests.get(key, [])]}

    # -- tracking -------------------------------------------------------------------------------
    def get_run(self, args: dict) -> dict:
        run_id = args.get("run_id") or args.get("run_uuid") or ""
        if run_id in self.foreign_runs:  # lives in another workspace: this one cannot see it
            raise _not_found(f"Run '{run_id}' not found.")
        run = self._up("GET", "runs/get", params={"run_id": run_id})["run"]
        run["info"]["artifact_uri"] = self._dbfs(run["info"].get("artifact_uri"))
        return {"run": ml.Run.from_dict(run).as_dict()}

    def search_experiments(self, args: dict) -> dict:
        data = self._up("POST", "experiments/search", body=args)
        out = {"experiments": [ml.Experiment.from_dict(e).as_dict() for e in data.get("experiments") or []]}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def search_runs(self, args: dict) -> dict:
        data = self._up("POST", "runs/search", body=args)
        runs = []
        for run in data.get("runs") or []:
            run["info"]["artifact_uri"] = self._dbfs(run["info"].get("artifact_uri"))
            runs.append(ml.Run.from_dict(run).as_dict())
        out = {"runs": runs}
        if data.get("next_page_token"):
            out["next_page_token"] = data["next_page_token"]
        return out

    def get_logged_model(self, args: dict, model_id: str) -> dict:
        model = self._up("GET", f"logged-models/{quote(model_id, safe='')}")["model"]
        if model["info"].get("source_run_id") in self.foreign_runs:  # with its run, in another workspace
            raise _not_found(f"Logged model '{model_id}' not found.")
        model["info"]["artifact_uri"] = self._dbfs(model["info"].get("artifact_uri"))
        return {"model": ml.LoggedModel.from_dict(model).as_dict()}

    # -- MLflow's artifact APIs and presigned URLs ----------------------------------------------
    def _artifact_files(self, endpoint: str, params: dict, root: str) -> dict:
        data = self._up("GET", endpoint, params=params)
        files = [mlflow_proto.FileInfo(path=f["path"], is_dir=bool(f.get("is_dir")), file_size=int(f.get("file_size") or 0))
                 for f in data.get("files") or []]
        return self._proto(mlflow_proto.ListArtifacts.Response(root_uri=self._dbfs(root) or "", files=files,
                                                               next_page_token=data.get("next_page_token") or ""))

    def list_run_artifacts(self, args: dict) -> dict:
        # GET /api/2.0/mlflow/artifacts/list (https://docs.databricks.com/api/workspace/experiments/listartifacts)
        run_id = args.get("run_id") or args.get("run_uuid") or ""
        params = {"run_id": run_id, **{k: args[k] for k in ("path", "page_token") if args.get(k)}}
        root = self._up("GET", "runs/get", params={"run_id": run_id})["run"]["info"].get("artifact_uri")
        return self._artifact_files("artifacts/list", params, root)

    def list_logged_model_artifacts(self, args: dict, model_id: str) -> dict:
        # GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories (service.proto ListLoggedModelArtifacts)
        params = {k: args[k] for k in ("artifact_directory_path", "page_token") if args.get(k)}
        root = self._up("GET", f"logged-models/{quote(model_id, safe='')}")["model"]["info"].get("artifact_uri")
        return self._artifact_files(f"logged-models/{quote(model_id, safe='')}/artifacts/directories", params, root)

    def _signed(self, kind: str, ident: str, path: str) -> str:
        """A presigned URL on this server, valid :attr:`presign_seconds` (an Azure SAS-like ``se`` / ``sig``)."""
        expiry = str(int(time.time() + self.presign_seconds))
        resource = f"{kind}/{ident}/{path}"
        sig = hmac.new(self._signing_key, f"{resource}\n{expiry}".encode(), hashlib.sha256).hexdigest()
        return f"{self.host}/presigned/{quote(resource)}?se={expiry}&sig={sig}"

    def credentials_for_read(self, args: dict) -> dict:
        # POST /api/2.0/mlflow/artifacts/credentials-for-read (databricks_artifacts.proto GetCredentialsForRead)
        run_id = args.get("run_id") or ""
        self._up("GET", "runs/get", params={"run_id": run_id})  # 404 for an unknown run
        infos = [artifacts_proto.ArtifactCredentialInfo(run_id=run_id, path=p, signed_uri=self._signed("runs", run_id, p),
                                                        type=artifacts_proto.AZURE_SAS_URI)
                 for p in args.get("path") or []]
        return self._proto(artifacts_proto.GetCredentialsForRead.Response(credential_infos=infos))

    def credentials_for_download(self, args: dict, model_id: str) -> dict:
        # POST /api/2.0/mlflow/logged-models/{model_id}/artifacts/credentials-for-download
        # (databricks_artifacts.proto GetCredentialsForLoggedModelDownload)
        self._up("GET", f"logged-models/{quote(model_id, safe='')}")
        creds = [artifacts_proto.LoggedModelArtifactCredential(
            model_id=model_id, credential_info=artifacts_proto.ArtifactCredentialInfo(
                path=p, signed_uri=self._signed("logged_models", model_id, p), type=artifacts_proto.AZURE_SAS_URI))
            for p in args.get("paths") or []]
        return self._proto(artifacts_proto.GetCredentialsForLoggedModelDownload.Response(credentials=creds))

    def presigned_download(self, path: str, query: dict) -> tuple[int, bytes, dict]:
        """What the storage answers for a presigned URL: the file, or 403 for a bad or expired signature
        (Azure Storage's AuthenticationFailed)."""
        resource = unquote(path[len("/presigned/"):])
        expiry, sig = (query.get("se") or [""])[0], (query.get("sig") or [""])[0]
        good = hmac.new(self._signing_key, f"{resource}\n{expiry}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, sig) or not expiry.isdigit() or int(expiry) < time.time():
            return 403, b"<Error><Code>AuthenticationFailed</Code></Error>", {"Content-Type": "application/xml"}
        kind, ident, rel = resource.split("/", 2)
        if kind == "runs":
            root = self._up("GET", "runs/get", params={"run_id": ident})["run"]["info"]["artifact_uri"]
        else:
            root = self._up("GET", f"logged-models/{quote(ident, safe='')}")["model"]["info"]["artifact_uri"]
        stored = root[len("mlflow-artifacts:/"):].lstrip("/")
        resp = self._http.get(f"{self.upstream}/api/2.0/mlflow-artifacts/artifacts/{quote(stored)}/{quote(rel)}", timeout=30)
        if resp.status_code != 200:
            return 404, b"<Error><Code>BlobNotFound</Code></Error>", {"Content-Type": "application/xml"}
        return 200, resp.content, {"Content-Type": "application/octet-stream"}

    # -- Files API ------------------------------------------------------------------------------
    def _listing(self, files_path: str) -> list[dict]:
        path = self._upstream_path(files_path)
        resp = self._http.get(f"{self.upstream}/api/2.0/mlflow-artifacts/artifacts", params={"path": path}, timeout=30)
        resp.raise_for_status()
        return resp.json().get("files") or []

    def list_directory(self, args: dict, files_path: str) -> dict:
        entries = self._listing(files_path)
        if not entries:  # object stores have no empty directories: nothing there
            raise ApiError(404, "NOT_FOUND", f"The directory being accessed is not found: {files_path}")
        base = files_path.rstrip("/")
        contents = [files.DirectoryEntry(path=f"{base}/{e['path'].rsplit('/', 1)[-1]}", name=e["path"].rsplit("/", 1)[-1],
                                         is_directory=bool(e.get("is_dir")), file_size=int(e.get("file_size") or 0) or None)
                    for e in entries]
        return {"contents": [c.as_dict() for c in contents]}

    def directory_metadata(self, args: dict, files_path: str) -> tuple[int, bytes, dict]:
        if not self._listing(files_path):
            raise ApiError(404, "NOT_FOUND", f"The directory being accessed is not found: {files_path}")
        return 200, b"", {}

    def download(self, args: dict, files_path: str) -> tuple[int, bytes, dict]:
        path = self._upstream_path(files_path)
        resp = self._http.get(f"{self.upstream}/api/2.0/mlflow-artifacts/artifacts/{quote(path)}", timeout=30)
        if resp.status_code != 200:
            raise ApiError(404, "NOT_FOUND", f"The file being accessed is not found: {files_path}")
        return 200, resp.content, {"Content-Type": "application/octet-stream"}

    # -- Jobs -----------------------------------------------------------------------------------
    def jobs_get_run(self, args: dict) -> dict:
        run_id = int(args.get("run_id") or 0)
        run = self.job_runs.get(run_id)
        if run is None:
            for parent in self.job_runs.values():  # a task run is a run too
                for task in parent.tasks or []:
                    if task.run_id == run_id:
                        return jobs.Run(job_id=parent.job_id, run_id=run_id, tasks=[task], git_source=task.git_source
                                        or parent.git_source, run_name=task.task_key).as_dict()
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        return run.as_dict()
