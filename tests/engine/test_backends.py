"""The REST backend (http(s) registries, no MLflow import) and the MLflow-client backend
(Databricks, Azure ML) read the same real server into the same evidence, with the same requests
and the same errors; and a check through the REST backend never imports MLflow."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from demo.stack import free_port
from shared.errors import BadInput, ConfigurationError, RateLimited, RegistryUnavailable, SubjectNotFound
from shared.evidence.collect import collect_version
from shared.evidence.registry import RegistryClient
from tests.support.proxy import Fault

BACKENDS = ("rest", "mlflow")


def test_http_registries_use_the_rest_backend_and_the_others_the_mlflow_client(registry):
    assert RegistryClient(registry).backend == "rest"
    assert RegistryClient(registry.replace("http://", "http://user:pw@")).backend == "rest"
    assert RegistryClient("sqlite:///:memory:").backend == "mlflow"


@pytest.mark.parametrize("scenario", ["clean", "no_run", "failed_run", "deleted_run", "missing_run", "cred_param",
                                      "cred_file", "no_env", "no_dataset", "no_run_id", "artifact_path", "runs_uri",
                                      "failed_registration", "champion"])
def test_both_backends_collect_the_same_evidence_with_the_same_requests(scenarios, registry, proxy, scenario):
    trained = scenarios[scenario]
    collected = {}
    for backend in BACKENDS:
        proxy.reset()
        evidence = collect_version(RegistryClient(registry, backend=backend), trained.model, trained.version,
                                   alias="champion" if scenario == "champion" else None)
        # the same endpoints (the MLflow client adds the legacy run_uuid to runs/get's query)
        collected[backend] = (dataclasses.asdict(evidence), sorted((m, p.replace("run_uuid=", "run_id=").split("&run_id=")[0])
                                                                   for m, p in proxy.requests))
    assert collected["rest"] == collected["mlflow"]
    assert collected["rest"][0]["version"]["version"] == trained.version


def test_both_backends_list_and_search_alike(scenarios, registry):
    rest, mlflow = RegistryClient(registry, backend="rest"), RegistryClient(registry, backend="mlflow")
    for client in (rest, mlflow):  # small pages: the page tokens of one backend work the same way
        assert client.search_model_versions("name='churn-promo'")[1] is None
    assert rest.search_model_versions() == mlflow.search_model_versions()
    assert rest.search_model_versions("name='churn-promo'") == mlflow.search_model_versions("name='churn-promo'")
    assert rest.search_registered_models() == mlflow.search_registered_models()
    assert rest.get_registered_model("churn-promo") == mlflow.get_registered_model("churn-promo")
    assert rest.experiment_ids() == mlflow.experiment_ids()
    runs = rest.search_runs_by_tag("mlflow.source.type", "NOTEBOOK")
    assert scenarios["notebook"].run_id in runs and sorted(runs) == sorted(mlflow.search_runs_by_tag("mlflow.source.type",
                                                                                                     "NOTEBOOK"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_and_malformed_subjects_are_told_apart_from_outages(backend, registry, mlflow_server):
    client = RegistryClient(registry, backend=backend)
    with pytest.raises(SubjectNotFound):
        collect_version(client, "no-such-model", "1")
    with pytest.raises(BadInput, match="was refused by"):
        client.get_model_version("churn-clean", "not-a-number")
    assert client.get_run("0" * 32).found is False
    assert client.get_logged_model("m-" + "0" * 32) is None
    with pytest.raises(BadInput, match="does not serve the MLflow API"):
        RegistryClient(mlflow_server.uri + "/not-mlflow", backend=backend).get_model_version("churn-clean", "1")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fault,reason", [(Fault(status=503), "HTTP 503"), (Fault(status=429, retry_after=0), "rate limited (HTTP 429)"),
                                          (Fault(reset=True), "connection reset")], ids=["503", "429", "reset"])
def test_outages_give_the_same_reason_through_both_backends(backend, fault, reason, scenarios, registry, proxy):
    proxy.always = fault
    try:
        with pytest.raises(RegistryUnavailable) as caught:
            RegistryClient(registry, backend=backend).get_model_version("churn-clean", scenarios["clean"].version)
    finally:
        proxy.always = None
    assert caught.value.reason.endswith(reason)
    assert len(proxy.requests) == 1 + int(os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])  # retried, then given up


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_registry_that_is_not_listening_is_unavailable(backend):
    with pytest.raises(RegistryUnavailable, match="connection refused"):
        RegistryClient(f"http://127.0.0.1:{free_port()}", backend=backend).get_model_version("m", "1")


def test_artifacts_outside_the_server_are_read_through_mlflow(kit, tmp_path):
    """A server without artifact proxying hands out file:// (s3://, wasbs://, ...) locations: the
    REST backend reads those through MLflow's artifact repositories, as the MLflow client does."""
    experiment = kit.client.create_experiment(f"direct-artifacts-{os.getpid()}", artifact_location=(tmp_path / "store").as_uri())
    run = kit.client.create_run(experiment)
    kit.client.log_text(run.info.run_id, "API_KEY=x\n", ".env")
    kit.client.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
    location = kit.client.get_run(run.info.run_id).info.artifact_uri
    assert location.startswith("file://")
    rest, mlflow = RegistryClient(kit.uri, backend="rest"), RegistryClient(kit.uri, backend="mlflow")
    assert rest.list_artifacts(location) == mlflow.list_artifacts(location) == [".env", "model/"]
    assert rest.read_artifact_text(location + "/model", "MLmodel") == "flavors: {}\n"


class Recorder(BaseHTTPRequestHandler):
    """A registry that refuses everyone, remembering the Authorization headers it saw."""

    seen: list[str | None] = []

    def do_GET(self):
        Recorder.seen.append(self.headers.get("Authorization"))
        _refuse(self, 401, b'{"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."}')

    def log_message(self, *args):
        pass


def _refuse(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture()
def refusing_registry():
    Recorder.seen = []
    with _serving(Recorder) as address:
        yield address


@contextlib.contextmanager
def _serving(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_rest_credentials_follow_the_mlflow_conventions_and_are_never_echoed(refusing_registry, monkeypatch):
    import base64

    def basic(user, password):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigurationError) as caught:  # a 401 is ours to fix: 503 / exit 3 saying what to set
        RegistryClient(f"http://alice:uri-s3cret@{refusing_registry}").get_model_version("m", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-s3cret")
    with pytest.raises(ConfigurationError):
        RegistryClient(f"http://{refusing_registry}").get_model_version("m", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-s3cret")
    with pytest.raises(ConfigurationError):
        RegistryClient(f"http://{refusing_registry}").get_model_version("m", "1")
    assert Recorder.seen == [basic("alice", "uri-s3cret"), "Bearer tok-s3cret", basic("bob", "env-s3cret")]
    message = str(caught.value)
    assert "not authorized, HTTP 401" in message and "s3cret" not in message and "alice" not in message
    assert caught.value.retry and caught.value.http_status == 503 and caught.value.exit_code == 3


def test_a_check_through_the_rest_backend_never_imports_mlflow(scenarios, registry, tmp_path):
    """The cold-start path: a fresh process checks a real version without importing MLflow."""
    code = (
        "import json, sys\n"
        "from shared.engine import Engine\nfrom shared.policy import load_policy\nfrom shared.report import Trigger\n"
        "from shared.sinks.store import ReportStore\n"
        f"report = Engine(load_policy(), ReportStore({str(tmp_path / 'r.sqlite')!r})).check_version(\n"
        f"    {registry!r}, 'churn-clean', {scenarios['clean'].version!r}, trigger=Trigger('cli', 'check'))\n"
        "print(json.dumps({'verdict': report['verdict'], 'requests': report['registry_requests'],"
        " 'mlflow': sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"verdict": "pass", "requests": 6, "mlflow": []}


class Throttling(BaseHTTPRequestHandler):
    """A registry that answers every request 429 with the Retry-After it is given."""

    retry_after = "1"
    seen = 0

    def do_GET(self):
        Throttling.seen += 1
        _refuse(self, 429, b'{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}',
                {"Retry-After": Throttling.retry_after})

    def log_message(self, *args):
        pass


@pytest.fixture()
def throttling_registry():
    Throttling.seen = 0
    with _serving(Throttling) as address:
        yield f"http://{address}"


def test_retry_after_is_honoured_within_the_retries_and_the_deadline(throttling_registry, monkeypatch):
    """A short Retry-After is waited for (MLFLOW_HTTP_REQUEST_MAX_RETRIES times); a registry asking
    for a pause longer than the check's deadline allows is not waited for at all: RateLimited at
    once (503 / exit 3), so the sender redelivers instead of the check hanging."""
    from shared.evidence.rest import retry_after_seconds

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    Throttling.retry_after = "1"
    with pytest.raises(RateLimited) as caught:
        RegistryClient(throttling_registry, deadline=30).get_model_version("m", "1")
    assert Throttling.seen == 3 and caught.value.status == 429 and caught.value.telemetry_kind == "rate_limited"
    Throttling.seen, Throttling.retry_after = 0, "3600"
    with pytest.raises(RateLimited) as caught:
        RegistryClient(throttling_registry, deadline=5).get_model_version("m", "1")
    assert Throttling.seen == 1 and caught.value.retry_after == 3600
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0 and retry_after_seconds("soon") is None


def test_missing_databricks_credentials_say_so(monkeypatch, tmp_path):
    """Without any Databricks configuration the check is not configured (503 / exit 3, retried,
    never a finding), and the reason says what to set instead of looking like an outage."""
    for key in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.databrickscfg
    with pytest.raises(ConfigurationError, match="Databricks credentials not configured: set DATABRICKS_HOST") as caught:
        RegistryClient("databricks").get_model_version("churn-model", "1")
    assert (caught.value.http_status, caught.value.exit_code, caught.value.retry) == (503, 3, True)
