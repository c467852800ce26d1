"""`evidence-gate serve`: the real CLI as a subprocess receiving real MLflow webhook deliveries,
and the same host in a thread for Event Grid and Databricks deliveries over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from demo.stack import free_port
from shared.serve import LocalHost, Schedule
from tests.functions.conftest import DATABRICKS_SECRET, MLFLOW_SECRET, databricks_headers, payload, unique
from tests.support.proxy import Fault

REPO = Path(__file__).resolve().parents[2]


def http(method, url, body=None, headers=None):
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(predicate, timeout=60.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture()
def served(fn_proxy, tmp_path):
    """`evidence-gate serve` as a subprocess, pointed at the proxy in front of the test server."""
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=fn_proxy.uri, MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
               DATABRICKS_WEBHOOK_SECRET=DATABRICKS_SECRET, EVIDENCE_GATE_STORE=str(tmp_path / "reports.sqlite"),
               EVIDENCE_GATE_RECONCILE_SCHEDULE="0 0 0 * * *")
    for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                 "EVIDENCE_GATE_STATE", "EVIDENCE_GATE_STATE__tableServiceUri"):
        env.pop(name, None)
    proc = subprocess.Popen([str(REPO / ".venv/bin/evidence-gate"), "serve", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "teams notifier" in line:
            break
    yield f"http://127.0.0.1:{port}", proc, lines, str(tmp_path / "reports.sqlite")
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def stored(path):
    from shared.sinks.store import ReportStore

    return ReportStore(path).query()


def test_cli_serve_receives_real_mlflow_webhooks_and_stops_on_sigterm(served, fn_kit):
    base, proc, lines, store_path = served
    text = "".join(lines)
    assert f"{base}/api/webhooks/mlflow" in text and f"{base}/runtime/webhooks/eventgrid?functionName=azureml_events" in text
    assert "reconcile" in text and "'0 0 0 * * *'" in text
    hook = fn_kit.client.create_webhook(
        name=unique("gate"), url=f"{base}/api/webhooks/mlflow", secret=MLFLOW_SECRET,
        events=["model_version.created", "model_version_alias.created", "model_version_tag.set"])
    try:
        time.sleep(1.2)  # the server's webhook list cache (1 s in these tests)
        name = unique("served")
        trained = fn_kit.model_version(name)
        wait_for(lambda: any(r["check"] == "registration" for r in stored(store_path)))
        fn_kit.client.set_registered_model_alias(name, "champion", trained.version)
        wait_for(lambda: any(r["check"] == "promotion" for r in stored(store_path)))
        fn_kit.client.set_model_version_tag(name, trained.version, "approved_by", "rita")
        wait_for(lambda: sum(r["check"] == "promotion" for r in stored(store_path)) == 2)
        reports = stored(store_path)
        assert {r["trigger"]["event_type"] for r in reports} == {
            "model_version.created", "model_version_alias.created", "model_version_tag.set"}
        assert all(r["trigger"]["source"] == "mlflow" and r["subject"]["model"] == name for r in reports)
        # a delivery signed with another secret never gets through the same route
        body = b'{"entity": "model_version", "action": "created", "data": {"name": "x", "version": "1"}}'
        status, _ = http("POST", f"{base}/api/webhooks/mlflow", body, {"X-MLflow-Signature": "v1,AAAA"})
        assert status == 401
    finally:
        fn_kit.client.delete_webhook(hook.webhook_id)
    status, body = http("POST", f"{base}/runtime/webhooks/eventgrid?functionName=azureml_events",
                        payload("eventgrid-subscription-validation.json"), {"aeg-event-type": "SubscriptionValidation"})
    assert status == 200 and json.loads(body) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out


@pytest.fixture()
def host(gate):
    local = LocalHost("127.0.0.1", 0, services=lambda: gate.services, background=False)
    local.serve_in_thread()
    yield local.base_url
    local.close()


def eventgrid(base, events, kind="Notification", name="azureml_events"):
    return http("POST", f"{base}/runtime/webhooks/eventgrid?functionName={name}", events,
                {"aeg-event-type": kind, "Content-Type": "application/json"})


def test_event_grid_local_url_in_both_schemas(host, gate, fn_kit):
    name = unique("served-aml")
    trained = fn_kit.model_version(name)
    eg = payload("azureml-model-registered.eventgrid.json")
    eg[0]["data"].update(ModelName=name, ModelVersion=int(trained.version))
    assert eventgrid(host, eg)[0] == 200
    ce = payload("azureml-model-registered.cloudevents.json")[0]  # a single CloudEvent object
    ce["data"].update(ModelName=name, ModelVersion=trained.version)
    assert eventgrid(host, ce)[0] == 200
    assert {r["trigger"]["event_id"] for r in gate.reports()} == {eg[0]["id"], ce["id"]}
    assert eventgrid(host, eg)[0] == 200 and gate.store.count() == 2  # redelivery: still one report per event


def test_event_grid_transient_is_503_and_poison_is_200(host, gate, fn_kit):
    name = unique("served-aml")
    trained = fn_kit.model_version(name)
    eg = payload("azureml-model-registered.eventgrid.json")
    eg[0]["data"].update(ModelName=name, ModelVersion=int(trained.version))
    gate.proxy.always = Fault(status=503)
    assert eventgrid(host, eg)[0] == 503 and gate.store.count() == 0
    gate.proxy.reset()
    assert eventgrid(host, eg)[0] == 200 and gate.store.count() == 1
    poison = payload("azureml-model-registered.eventgrid.json")
    poison[0]["topic"] = "/not/a/workspace"
    assert eventgrid(host, poison)[0] == 200
    assert eventgrid(host, eg, kind="Bogus")[0] == 400
    assert eventgrid(host, b"{oops")[0] == 400
    assert eventgrid(host, eg, name="nope")[0] == 404


def test_http_routes_through_the_host(host, gate, fn_kit):
    name = unique("served-dbx")
    trained = fn_kit.model_version(name)
    body = payload("databricks-registry-version-created.json")
    body.update(model_name=name, version=trained.version)
    raw = json.dumps(body).encode()
    status, out = http("POST", f"{host}/api/webhooks/databricks/registry", raw, databricks_headers(raw))
    assert status == 200 and json.loads(out)["reports"][0]["check"] == "registration"
    assert http("POST", f"{host}/api/webhooks/databricks/registry", raw, {})[0] == 401
    assert http("POST", f"{host}/api/webhooks/databricks/registry", b"x" * (2 << 20), databricks_headers(b""))[0] == 413
    status, out = http("POST", f"{host}/api/webhooks/databricks/registry", b"x" * (9 << 20), databricks_headers(b""))
    assert status == 413 and json.loads(out)["error"] == "too_large"  # over the host's own cap: answered, not reset
    assert http("GET", f"{host}/api/webhooks/databricks/registry")[0] == 405
    assert http("POST", f"{host}/api/nothing", b"{}")[0] == 404
    status, out = http("GET", f"{host}/")
    assert status == 200 and "reconcile" in json.loads(out)["functions"]


@pytest.mark.parametrize("text,now,expected", [
    ("0 */15 * * * *", "2026-01-01T10:07:30", "2026-01-01T10:15:00"),
    ("*/10 * * * * *", "2026-01-01T10:07:31", "2026-01-01T10:07:40"),
    ("0 0 * * * *", "2026-01-01T23:30:00", "2026-01-02T00:00:00"),
    ("00:05:00", "2026-01-01T10:00:00", "2026-01-01T10:05:00"),
])
def test_schedule(text, now, expected):
    at = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert Schedule(text).next_after(at) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("text", ["0 0 12 * * MON", "* * *", "0 */0 * * * *", "61 * * * * *"])
def test_unsupported_schedules_are_refused(text):
    from shared.errors import BadInput

    with pytest.raises(BadInput):
        Schedule(text)
