"""Registry access over the MLflow REST API, for open-source MLflow servers (``http(s)://``).

Why not the MLflow client here: importing MLflow takes longer than the goal for a whole first
event in a fresh process (docs/performance.md, cold start); a check needs only ten read-only
endpoints. The answers become the same evidence objects as :mod:`shared.evidence.mlflow_client`'s,
and the suite runs against a real MLflow server through this backend.

It follows the MLflow client's conventions for the same server, so an existing setup keeps working:

- credentials: ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (Basic), else
  ``MLFLOW_TRACKING_TOKEN`` (Bearer), else a ``user:password@`` part of the URI; TLS:
  ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH``,
  ``MLFLOW_TRACKING_CLIENT_CERT_PATH``. (A custom ``MLFLOW_TRACKING_AUTH`` plugin needs the MLflow
  client: :func:`serves` is false then.)
- retries: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``..._BACKOFF_FACTOR``, ``..._BACKOFF_JITTER``,
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (Evidence Gate's defaults: ``HTTP_DEFAULTS`` in
  :mod:`shared.evidence.registry`); 429 and 5xx are retried, ``Retry-After`` is honoured up to
  :data:`MAX_RETRY_AFTER` seconds a wait.
- artifacts: ``mlflow-artifacts:`` locations (a server that proxies artifacts, the default of
  ``mlflow server``) are read through the server; any other location (``s3://``, ``wasbs://``,
  ``file:``, ...) through MLflow's artifact repositories, which imports MLflow then.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared.errors import BadInput, RegistryUnavailable
from shared.evidence import mlflow_client
from shared.evidence.model import DatasetRef, LoggedModelInfo, RegisteredModelEvidence, RunEvidence, VersionEvidence

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
MAX_RETRY_AFTER = 10.0  # seconds; a longer Retry-After ends the retries sooner (the event is redelivered)
_TRUE = {"true", "1", "yes"}


def serves(uri: str) -> bool:
    """Whether this backend serves ``uri``: a plain http(s) MLflow server without an auth plugin."""
    return urlsplit(uri).scheme.lower() in ("http", "https") and not os.environ.get("MLFLOW_TRACKING_AUTH")


class HttpFailure(Exception):
    """A non-200 answer (after the retries)."""

    def __init__(self, response: requests.Response):
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        self.error_code = body.get("error_code") if isinstance(body.get("error_code"), str) else None
        self.message = str(body.get("message") or f"HTTP {self.status}")
        super().__init__(self.message)


class RestBackend:
    name = "rest"

    def __init__(self, uri: str, shown_uri: str, *, auth: requests.auth.AuthBase | None = None):
        """``auth``: set on every request instead of the MLflow credential settings (a platform's
        own token, e.g. Azure ML's bearer token)."""
        parts = urlsplit(uri)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise BadInput(f"cannot use registry URI '{shown_uri}': an MLflow server URL is http(s)://host[:port][/path]")
        try:
            port = parts.port
        except ValueError:
            raise BadInput(f"cannot use registry URI '{shown_uri}': the port is not a number") from None
        host = parts.hostname + (f":{port}" if port else "")
        self.uri = shown_uri
        self._scheme, self._host, self._prefix = parts.scheme.lower(), host, parts.path.rstrip("/")
        self._base = urlunsplit((self._scheme, host, self._prefix, "", ""))
        self._session = _session(parts.username, parts.password)
        self._timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)
        self._tracking_uri = uri
        self._auth = auth

    # -- plumbing --------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, params=None, body=None, stream: bool = False) -> requests.Response:
        response = self._session.request(method, url, params=params, json=body, timeout=self._timeout, stream=stream,
                                         auth=self._auth)
        if response.status_code != 200:
            response.close()
            raise HttpFailure(response)
        return response

    def _json(self, method: str, endpoint: str, *, params=None, body=None) -> dict:
        data = self._request(method, f"{self._base}{API}/{endpoint}", params=params, body=body).json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data

    def translate(self, what: str, exc: Exception) -> Exception:
        """An error of this backend as ours: not found (evidence), bad input, or an outage."""
        if isinstance(exc, HttpFailure):
            code = exc.error_code or ("ENDPOINT_NOT_FOUND" if exc.status == 404 else None)  # 404 without an MLflow error
            return mlflow_client.api_error(self.uri, what, code, mlflow_client.first_line(exc), _status_reason(exc.status))
        if isinstance(exc, requests.RequestException):
            return RegistryUnavailable(self.uri, f"{what}: {_connection_reason(exc)}")
        if isinstance(exc, (ValueError, KeyError, TypeError, AttributeError)):  # an answer we cannot read
            return RegistryUnavailable(self.uri, f"{what}: no usable answer")
        return mlflow_client.translate(self.uri, what, exc)  # artifacts read through MLflow

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str) -> VersionEvidence:
        data = self._json("GET", "model-versions/get", params={"name": name, "version": version})
        return version_from_json(data["model_version"])

    def get_registered_model(self, name: str) -> RegisteredModelEvidence:
        rm = self._json("GET", "registered-models/get", params={"name": name})["registered_model"]
        return RegisteredModelEvidence(
            name=rm["name"],
            description=rm.get("description") or None,
            tags=_pairs(rm.get("tags")),
            aliases={a["alias"]: str(a["version"]) for a in rm.get("aliases") or []},
            latest_versions={mv.get("current_stage") or "None": str(mv["version"]) for mv in rm.get("latest_versions") or []},
        )

    def search_model_versions(self, filter_string: str | None, page_token: str | None, max_results: int):
        params = {"max_results": max_results, "order_by": ["last_updated_timestamp DESC"]}
        if filter_string:
            params["filter"] = filter_string
        if page_token:
            params["page_token"] = page_token
        data = self._json("GET", "model-versions/search", params=params)
        page = [(version_from_json(mv), int(mv.get("last_updated_timestamp") or 0)) for mv in data.get("model_versions") or []]
        return page, data.get("next_page_token") or None

    def search_registered_models(self, page_token: str | None, max_results: int):
        params = {"max_results": max_results, "order_by": ["last_updated_timestamp DESC"]}
        if page_token:
            params["page_token"] = page_token
        data = self._json("GET", "registered-models/search", params=params)
        page = [(rm["name"], int(rm.get("last_updated_timestamp") or 0)) for rm in data.get("registered_models") or []]
        return page, data.get("next_page_token") or None

    # -- tracking --------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunEvidence:
        run = self._json("GET", "runs/get", params={"run_id": run_id})["run"]
        info, data = run["info"], run.get("data") or {}
        datasets = []
        for dataset_input in (run.get("inputs") or {}).get("dataset_inputs") or []:
            ds = dataset_input["dataset"]
            context = _pairs(dataset_input.get("tags")).get("mlflow.data.context")
            datasets.append(DatasetRef(name=ds["name"], digest=ds["digest"], source=ds.get("source", ""), context=context))
        return RunEvidence(
            run_id=info.get("run_id") or info["run_uuid"],
            status=info.get("status"),
            lifecycle_stage=info.get("lifecycle_stage"),
            experiment_id=str(info["experiment_id"]) if info.get("experiment_id") is not None else None,
            start_time=_int(info.get("start_time")),
            end_time=_int(info.get("end_time")),
            user=info.get("user_id") or None,
            artifact_uri=info.get("artifact_uri"),
            params=_pairs(data.get("params")),
            metrics={m["key"]: float(m["value"]) for m in data.get("metrics") or []},
            tags=_pairs(data.get("tags")),
            datasets=datasets,
        )

    def search_experiments(self, page_token: str | None, max_results: int):
        body = {"max_results": max_results, **({"page_token": page_token} if page_token else {})}
        data = self._json("POST", "experiments/search", body=body)
        return [str(e["experiment_id"]) for e in data.get("experiments") or []], data.get("next_page_token") or None

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int) -> list[str]:
        data = self._json("POST", "runs/search",
                          body={"experiment_ids": experiment_ids, "filter": filter_string, "max_results": max_results})
        return [r["info"].get("run_id") or r["info"]["run_uuid"] for r in data.get("runs") or []]

    def get_logged_model(self, model_id: str) -> LoggedModelInfo:
        info = self._json("GET", f"logged-models/{quote(model_id, safe='')}")["model"]["info"]
        return LoggedModelInfo(model_id=info["model_id"], artifact_location=info.get("artifact_uri"),
                               source_run_id=info.get("source_run_id") or None)

    # -- artifacts -------------------------------------------------------------------------
    def _served(self, location: str) -> tuple[str, str] | None:
        """(artifacts endpoint URL, path under it) when the server itself serves ``location``."""
        parts = urlsplit(location)
        scheme = parts.scheme.lower()
        if scheme == "mlflow-artifacts":  # resolved as the MLflow client does: the tracking server's scheme and path
            endpoint = urlunsplit((self._scheme, parts.netloc or self._host, self._prefix + ARTIFACTS_API, "", ""))
            return endpoint, parts.path.strip("/")
        if scheme in ("http", "https") and ARTIFACTS_API in parts.path:
            head, tail = location.split(ARTIFACTS_API, 1)
            return head + ARTIFACTS_API, tail.strip("/")
        return None

    def list_artifacts(self, location: str) -> list[str]:
        served = self._served(location)
        if served is None:
            return mlflow_client.list_artifacts(location, self._tracking_uri)
        endpoint, path = served
        data = self._request("GET", endpoint, params={"path": path}).json()
        return sorted(os.path.basename(f["path"].rstrip("/")) + ("/" if f.get("is_dir") else "") for f in data.get("files") or [])

    def read_artifact_text(self, location: str, name: str, limit: int) -> str:
        served = self._served(location)
        if served is None:
            return mlflow_client.read_artifact_text(location, name, self._tracking_uri, limit)
        endpoint, path = served
        url = f"{endpoint}/{quote(f'{path}/{name}'.strip('/'))}"
        with self._request("GET", url, stream=True) as response:
            raw = response.raw.read(limit, decode_content=True)
        return raw.decode("utf-8", errors="replace")


def version_from_json(mv: dict) -> VersionEvidence:
    stage = mv.get("current_stage")
    return VersionEvidence(
        name=mv["name"],
        version=str(mv["version"]),
        status=mv.get("status") or "READY",
        source=mv.get("source") or None,
        run_id=mv.get("run_id") or None,
        model_id=mv.get("model_id") or None,
        user_id=mv.get("user_id") or None,
        description=mv.get("description") or None,
        stage=stage if stage not in (None, "", "None") else None,
        status_message=mv.get("status_message") or None,
        creation_timestamp=_int(mv.get("creation_timestamp")),
        tags=_pairs(mv.get("tags")),
        aliases=[str(a) for a in mv.get("aliases") or []],
    )


def _pairs(items) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or []}


def _int(value) -> int | None:
    return int(value) if value is not None else None


def _status_reason(status: int) -> str:
    if status == 429:
        return "rate limited (HTTP 429)"
    if status in (401, 403):
        return f"not authorized (HTTP {status}): check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
    return f"HTTP {status}"


def _connection_reason(exc: requests.RequestException) -> str:
    """A short reason without the URL (requests' texts embed it)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    reason = mlflow_client.connection_reason(str(exc))
    if reason:
        return reason
    return "TLS handshake failed" if isinstance(exc, requests.exceptions.SSLError) else "connection failed"


class _Retry(Retry):
    """urllib3's retry, with Retry-After honoured up to MAX_RETRY_AFTER seconds a wait."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


_SESSIONS: dict[tuple, requests.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(uri_user: str | None, uri_password: str | None) -> requests.Session:
    """One pooled session per configuration, shared by every check of the process (as the MLflow
    client does): connections stay open between checks."""
    env = os.environ.get
    user, password = env("MLFLOW_TRACKING_USERNAME"), env("MLFLOW_TRACKING_PASSWORD")
    token = env("MLFLOW_TRACKING_TOKEN")
    insecure = (env("MLFLOW_TRACKING_INSECURE_TLS") or "").lower() in _TRUE
    verify = False if insecure else (env("MLFLOW_TRACKING_SERVER_CERT_PATH") or True)
    cert = env("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
    retries = (int(env("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 7), float(env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") or 2),
               float(env("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER") or 1))
    if not (user and password) and uri_user is not None:
        user, password = uri_user, uri_password or ""
    key = (user, password, token, verify, cert, retries)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            session = requests.Session()
            if user and password is not None:
                session.auth = (user, password)
            elif token:
                session.headers["Authorization"] = f"Bearer {token}"
            session.verify, session.cert = verify, cert
            retry = _Retry(total=retries[0], backoff_factor=retries[1], backoff_jitter=retries[2],
                           status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None,  # every request is a read
                           respect_retry_after_header=True, raise_on_status=False)
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _SESSIONS[key] = session
        return session
