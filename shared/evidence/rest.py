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
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (Evidence Gate's defaults when unset: ``HTTP_DEFAULTS`` in
  :mod:`shared.evidence.mlflow_client`); connection failures, 429 and 5xx are retried, ``Retry-After``
  is honoured up to :data:`MAX_RETRY_AFTER` seconds a wait, and every timeout and wait is bounded
  by the check's deadline (:mod:`shared.evidence.deadline`).
- errors are typed where the status is known: 429 -> :class:`RateLimited`, 5xx / connection ->
  :class:`RegistryUnavailable`, 401/403 on the API -> :class:`ConfigurationError` (the
  credentials to check), 401/403 or a missing endpoint on artifacts or logged models, or an
  artifact over the size limit -> :class:`EvidenceUnreadable` (EVD-008).
- artifacts: ``mlflow-artifacts:`` locations (a server that proxies artifacts, the default of
  ``mlflow server``) are read through the server; any other location (``s3://``, ``wasbs://``,
  ``file:``, ...) through MLflow's artifact repositories, which imports MLflow then.
"""

from __future__ import annotations

import os
import random
import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from shared.errors import BadInput, ConfigurationError, EvidenceUnreadable, RateLimited, RegistryUnavailable
from shared.evidence import artifact_stores, mlflow_client
from shared.evidence.deadline import Deadline
from shared.evidence.model import DatasetRef, LoggedModelInfo, RegisteredModelEvidence, RunEvidence, VersionEvidence

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
MAX_RETRY_AFTER = 10.0  # seconds; a longer Retry-After ends the retries sooner (the event is redelivered)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
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
        self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        super().__init__(self.message)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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
        setting = mlflow_client.http_setting
        self._timeout = float(setting("MLFLOW_HTTP_REQUEST_TIMEOUT"))
        self._retries = int(setting("MLFLOW_HTTP_REQUEST_MAX_RETRIES"))
        self._backoff = float(setting("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"))
        self._jitter = float(setting("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"))
        self._tracking_uri = uri
        self._auth = auth

    # -- plumbing --------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, deadline: Deadline, params=None, body=None,
                 stream: bool = False) -> requests.Response:
        """One request, retried on connection failures, 429 and 5xx with backoff (``Retry-After``
        honoured up to :data:`MAX_RETRY_AFTER`), every timeout and wait within ``deadline``.
        Raises :class:`HttpFailure` for a non-200 answer, or the last connection error."""
        attempt = 0
        while True:
            try:
                response = self._session.request(method, url, params=params, json=body, stream=stream,
                                                 timeout=deadline.timeout(self._timeout), auth=self._auth)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure: Exception = exc
                wait = self._backoff * 2 ** attempt + random.uniform(0, self._jitter)
            else:
                if response.status_code == 200:
                    return response
                failure = HttpFailure(response)
                response.close()
                if failure.status not in RETRY_STATUSES:
                    raise failure
                wait = (min(failure.retry_after, MAX_RETRY_AFTER) if failure.retry_after is not None
                        else self._backoff * 2 ** attempt + random.uniform(0, self._jitter))
            attempt += 1
            if attempt > self._retries or not deadline.allows_wait(wait):
                raise failure
            time.sleep(wait)

    def _json(self, method: str, endpoint: str, *, deadline: Deadline, params=None, body=None) -> dict:
        data = self._request(method, f"{self._base}{API}/{endpoint}", deadline=deadline, params=params, body=body).json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data

    def translate(self, what: str, exc: Exception) -> Exception:
        """An error of this backend as ours, from the HTTP status where there is one."""
        if isinstance(exc, HttpFailure):
            if exc.status == 429:
                return RateLimited(self.uri, f"{what}: rate limited (HTTP 429)", retry_after=exc.retry_after)
            if exc.status in (401, 403):
                return ConfigurationError(
                    f"registry {self.uri} refused {what} (not authorized, HTTP {exc.status}): check"
                    " MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN")
            code = exc.error_code or ("ENDPOINT_NOT_FOUND" if exc.status == 404 else None)  # 404 without an MLflow error
            return mlflow_client.api_error(self.uri, what, code, mlflow_client.first_line(exc), f"HTTP {exc.status}",
                                           status=exc.status)
        if isinstance(exc, requests.RequestException):
            return RegistryUnavailable(self.uri, f"{what}: {_connection_reason(exc)}")
        if isinstance(exc, (ValueError, KeyError, TypeError, AttributeError)):  # an answer we cannot read
            return RegistryUnavailable(self.uri, f"{what}: no usable answer")
        return mlflow_client.translate(self.uri, what, exc)

    def _unreadable(self, what: str, location: str, exc: HttpFailure, endpoint: str = "artifacts",
                    fix: str = "serve artifacts through the tracking server (mlflow server --serve-artifacts)"
                               " or use a registry that does") -> EvidenceUnreadable | None:
        """A refusal that retrying will not change, for evidence the version can be checked without."""
        if exc.status in (401, 403):
            return EvidenceUnreadable(what, f"the registry {self.uri} refused access (HTTP {exc.status})",
                                      "grant the identity Evidence Gate uses read access to the experiment",
                                      location=location)
        if exc.status in (404, 405, 501) and not exc.error_code:
            return EvidenceUnreadable(what, f"{self.uri} does not serve the MLflow {endpoint} API (HTTP {exc.status})",
                                      fix, location=location)
        return None

    # -- registry --------------------------------------------------------------------------
    def get_model_version(self, name: str, version: str, *, deadline: Deadline) -> VersionEvidence:
        data = self._json("GET", "model-versions/get", deadline=deadline, params={"name": name, "version": version})
        return version_from_json(data["model_version"])

    def get_registered_model(self, name: str, *, deadline: Deadline) -> RegisteredModelEvidence:
        rm = self._json("GET", "registered-models/get", deadline=deadline, params={"name": name})["registered_model"]
        return registered_model_from_json(rm)

    def search_model_versions(self, filter_string: str | None, page_token: str | None, max_results: int, *,
                              deadline: Deadline):
        params = {"max_results": max_results, "order_by": ["last_updated_timestamp DESC"]}
        if filter_string:
            params["filter"] = filter_string
        if page_token:
            params["page_token"] = page_token
        data = self._json("GET", "model-versions/search", deadline=deadline, params=params)
        page = [(version_from_json(mv), int(mv.get("last_updated_timestamp") or 0)) for mv in data.get("model_versions") or []]
        return page, data.get("next_page_token") or None

    def search_registered_models(self, page_token: str | None, max_results: int, *, deadline: Deadline):
        params = {"max_results": max_results, "order_by": ["last_updated_timestamp DESC"]}
        if page_token:
            params["page_token"] = page_token
        data = self._json("GET", "registered-models/search", deadline=deadline, params=params)
        page = [(registered_model_from_json(rm), int(rm.get("last_updated_timestamp") or 0))
                for rm in data.get("registered_models") or []]
        return page, data.get("next_page_token") or None

    # -- tracking --------------------------------------------------------------------------
    def get_run(self, run_id: str, *, deadline: Deadline) -> RunEvidence:
        run = self._json("GET", "runs/get", deadline=deadline, params={"run_id": run_id})["run"]
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

    def search_experiments(self, page_token: str | None, max_results: int, *, deadline: Deadline):
        body = {"max_results": max_results, **({"page_token": page_token} if page_token else {})}
        data = self._json("POST", "experiments/search", deadline=deadline, body=body)
        return [str(e["experiment_id"]) for e in data.get("experiments") or []], data.get("next_page_token") or None

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int, *,
                    deadline: Deadline) -> list[str]:
        data = self._json("POST", "runs/search", deadline=deadline,
                          body={"experiment_ids": experiment_ids, "filter": filter_string, "max_results": max_results})
        return [r["info"].get("run_id") or r["info"]["run_uuid"] for r in data.get("runs") or []]

    def get_logged_model(self, model_id: str, *, deadline: Deadline) -> LoggedModelInfo:
        try:
            info = self._json("GET", f"logged-models/{quote(model_id, safe='')}", deadline=deadline)["model"]["info"]
        except HttpFailure as exc:
            raise self._unreadable(f"logged model {model_id}", model_id, exc, "logged-models",
                                   "register the version from its run's artifacts (runs:/<run>/model), or use a"
                                   " registry that serves MLflow 3 logged models") or exc from None
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

    def list_artifacts(self, location: str, *, deadline: Deadline) -> list[str]:
        served = self._served(location)
        if served is None:
            return artifact_stores.list_artifacts(location, self._tracking_uri, deadline=deadline)
        endpoint, path = served
        try:
            data = self._request("GET", endpoint, deadline=deadline, params={"path": path}).json()
        except HttpFailure as exc:
            raise self._unreadable(f"artifacts at {location}", location, exc) or exc from None
        return sorted(os.path.basename(f["path"].rstrip("/")) + ("/" if f.get("is_dir") else "") for f in data.get("files") or [])

    def read_artifact_text(self, location: str, name: str, limit: int, *, deadline: Deadline) -> str:
        served = self._served(location)
        if served is None:
            return artifact_stores.read_artifact_text(location, name, self._tracking_uri, limit, deadline=deadline)
        endpoint, path = served
        url = f"{endpoint}/{quote(f'{path}/{name}'.strip('/'))}"
        try:
            response = self._request("GET", url, deadline=deadline, stream=True)
        except HttpFailure as exc:
            raise self._unreadable(f"{name} at {location}", location, exc) or exc from None
        with response:
            raw = response.raw.read(limit + 1, decode_content=True)
        if len(raw) > limit:
            raise artifact_stores.too_large(name, location, limit)
        return raw.decode("utf-8", errors="replace")


def registered_model_from_json(rm: dict) -> RegisteredModelEvidence:
    """A registered model as ``registered-models/get`` and ``registered-models/search`` return it
    (both carry the aliases and the latest version per stage)."""
    return RegisteredModelEvidence(
        name=rm["name"],
        description=rm.get("description") or None,
        tags=_pairs(rm.get("tags")),
        aliases={a["alias"]: str(a["version"]) for a in rm.get("aliases") or []},
        latest_versions={mv.get("current_stage") or "None": str(mv["version"]) for mv in rm.get("latest_versions") or []},
    )


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


def _connection_reason(exc: requests.RequestException) -> str:
    """A short reason without the URL (requests' texts embed it)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    reason = mlflow_client.connection_reason(str(exc))
    if reason:
        return reason
    return "TLS handshake failed" if isinstance(exc, requests.exceptions.SSLError) else "connection failed"


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
    if not (user and password) and uri_user is not None:
        user, password = uri_user, uri_password or ""
    key = (user, password, token, verify, cert)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            session = requests.Session()
            if user and password is not None:
                session.auth = (user, password)
            elif token:
                session.headers["Authorization"] = f"Bearer {token}"
            session.verify, session.cert = verify, cert
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)  # retried in _request
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _SESSIONS[key] = session
        return session
