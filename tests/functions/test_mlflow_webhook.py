"""`mlflow_webhook` through the function object: signatures, the three events, duplicates, outages."""

from __future__ import annotations

import json
import time

import pytest

from tests.functions.conftest import MLFLOW_SECRET, mlflow_headers, payload, unique
from tests.support.proxy import Fault


def created(trained, *, run_id=None) -> bytes:
    body = payload("mlflow-model-version-created.json")
    body["data"].update(name=trained.model, version=trained.version, run_id=run_id)
    return json.dumps(body).encode()


def answer(resp):
    return resp.status_code, json.loads(resp.get_body())


@pytest.fixture(scope="module")
def versions(fn_kit):
    name = unique("mlf-hook")
    v1 = fn_kit.model_version(name)
    v2 = fn_kit.model_version(name, version_tags={"owner": "team-churn", "approved_by": "rita"})
    fn_kit.client.set_registered_model_alias(name, "champion", v2.version)
    return v1, v2


# -- signatures ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "wrong_secret", "tampered", "stale", "future", "bad_timestamp",
                                  "other_delivery_id", "not_base64"])
def test_refuses_unsigned_wrong_tampered_and_stale_deliveries(gate, versions, case):
    body = created(versions[0])
    headers = mlflow_headers(body)
    if case == "missing":
        headers.pop("X-MLflow-Signature")
    elif case == "wrong_secret":
        headers = mlflow_headers(body, secret="not-the-secret")
    elif case == "tampered":
        body = body.replace(b'"name"', b'"name" ', 1)
    elif case == "stale":
        headers = mlflow_headers(body, timestamp=int(time.time()) - 301)
    elif case == "future":
        headers = mlflow_headers(body, timestamp=int(time.time()) + 301)
    elif case == "bad_timestamp":
        headers["X-MLflow-Timestamp"] = "yesterday"
    elif case == "other_delivery_id":
        headers["X-MLflow-Delivery-Id"] = "another-id"
    elif case == "not_base64":
        headers["X-MLflow-Signature"] = "v1,***"
    status, out = answer(gate.post("mlflow_webhook", body, headers))
    assert status == 401 and out["error"] == "unauthorized"
    assert gate.store.count() == 0
    assert gate.proxy.count() == 0  # refused before any registry request


def test_no_secret_configured_refuses_everything(gate, versions, monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_WEBHOOK_SECRET")
    body = created(versions[0])
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body)))
    assert status == 401 and "MLFLOW_WEBHOOK_SECRET is not set" in out["message"]
    assert "MLFLOW_WEBHOOK_SECRET is not set" in caplog.text


def test_a_signature_within_five_minutes_is_accepted(gate, versions):
    body = created(versions[0])
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body, timestamp=int(time.time()) - 290)))
    assert status == 200 and out["status"] == "checked"


# -- events --------------------------------------------------------------------------------------
def test_version_created_with_null_run_id_is_a_registration_check(gate, versions):
    body = created(versions[0], run_id=None)
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body, delivery_id="d-1")))
    assert status == 200, out
    (report,) = gate.reports()
    assert report["check"] == "registration" and report["trigger"]["source"] == "mlflow"
    assert report["trigger"]["event_id"] == "d-1" and report["subject"]["model"] == versions[0].model
    assert report["subject"]["run_id"] == versions[0].run_id  # lineage resolved although the payload had none
    assert report["verdict"] == "pass", report["findings"]


def test_duplicate_deliveries_give_one_report(gate, versions):
    body = created(versions[0])
    first = answer(gate.post("mlflow_webhook", body, mlflow_headers(body, delivery_id="same")))[1]
    second = answer(gate.post("mlflow_webhook", body, mlflow_headers(body, delivery_id="same")))[1]
    assert first["reports"][0]["report_id"] == second["reports"][0]["report_id"]
    assert (first["stored"], second["stored"], second["duplicates"]) == (1, 0, 1)
    assert gate.store.count() == 1


def test_protected_alias_is_a_promotion_check_and_other_aliases_are_ignored(gate, versions):
    v1, v2 = versions
    body = payload("mlflow-model-version-alias-created.json")
    body["data"].update(name=v2.model, version=v2.version, alias="champion")
    raw = json.dumps(body).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 200, out
    (report,) = gate.reports()
    assert report["check"] == "promotion" and report["subject"]["alias"] == "champion"
    body["data"]["alias"] = "shadow"
    raw = json.dumps(body).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 200 and out["status"] == "ignored" and "not protected" in out["reason"]
    assert gate.store.count() == 1


def test_approval_tag_rechecks_the_promotion_other_tags_are_ignored(gate, versions):
    v1, v2 = versions
    body = payload("mlflow-model-version-tag-set.json")
    body["data"].update(name=v2.model, version=v2.version, key="approved_by", value="rita")
    raw = json.dumps(body).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 200, out
    (report,) = gate.reports()
    assert report["check"] == "promotion" and report["subject"]["alias"] == "champion"
    assert "GOV-001" not in {f["rule_id"] for f in report["findings"]}  # the approval is seen
    body["data"]["key"] = "team"
    raw = json.dumps(body).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert out["status"] == "ignored" and "approved_by" in out["reason"]


def test_approval_on_a_version_without_protected_alias_is_a_registration_check_and_says_so(gate, versions):
    v1, _ = versions
    body = payload("mlflow-model-version-tag-set.json")
    body["data"].update(name=v1.model, version=v1.version)
    raw = json.dumps(body).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 200 and out["reports"][0]["check"] == "registration"
    assert "holds no protected alias" in out["notes"][0]
    assert "holds no protected alias" in gate.reports()[0]["notes"][0]


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "not JSON"),
    (b"[]", "JSON object"),
    (json.dumps({"entity": "model_version", "action": "created", "data": {"version": "1"}}).encode(), "data.name"),
    (json.dumps({"entity": "model_version", "action": "created", "data": {"name": "m", "version": True}}).encode(), "data.version"),
    (json.dumps({"entity": "model_version", "action": "created"}).encode(), "data"),
    (b"\xff\xfe", "UTF-8"),
])
def test_malformed_bodies_are_400_with_a_json_error(gate, body, fragment):
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body)))
    assert status == 400 and out["error"] == "bad_input" and fragment in out["message"]


def test_other_events_are_ignored_with_the_reason(gate):
    raw = json.dumps({"entity": "registered_model", "action": "created", "timestamp": "x", "data": {"name": "m"}}).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 200 and out["status"] == "ignored" and "registered_model.created" in out["reason"]


def test_body_over_one_mib_is_413(gate):
    raw = b'{"entity": "' + b"x" * (1 << 20) + b'"}'
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 413 and out["error"] == "too_large"


def test_unknown_version_is_answered_without_a_report(gate, versions):
    body = created(versions[0])
    data = json.loads(body)
    data["data"]["version"] = "999"
    raw = json.dumps(data).encode()
    status, out = answer(gate.post("mlflow_webhook", raw, mlflow_headers(raw)))
    assert status == 200 and out["status"] == "skipped" and "does not exist" in out["reason"]


def test_stopped_registry_gives_503_and_no_report_then_the_report_appears(gate, versions):
    body = created(versions[0])
    headers = mlflow_headers(body, delivery_id="retry-me")
    gate.proxy.always = Fault(status=503)
    resp = gate.post("mlflow_webhook", body, headers)
    status, out = answer(resp)
    assert status == 503 and out["error"] == "registry_unavailable" and resp.headers["Retry-After"]
    assert gate.store.count() == 0
    gate.proxy.reset()
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body, delivery_id="retry-me")))
    assert status == 200 and gate.store.count() == 1


@pytest.fixture(scope="module")
def running(fn_kit):
    return fn_kit.model_version(unique("mlf-running"), run_status="RUNNING")


def test_a_version_whose_run_is_still_running_is_503_until_the_run_ends(gate, fn_kit, running):
    """Registered inside the run: MLflow's redelivery (or reconcile) checks it once the run ended."""
    trained = running
    body = created(trained)
    resp = gate.post("mlflow_webhook", body, mlflow_headers(body, delivery_id="run-still-going"))
    status, out = answer(resp)
    assert status == 503 and out["error"] == "registry_unavailable" and "still RUNNING" in out["message"]
    assert gate.store.count() == 0
    fn_kit.client.set_terminated(trained.run_id, "FINISHED")
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body, delivery_id="run-still-going")))
    assert status == 200 and out["status"] == "checked" and "LIN-002" not in out["reports"][0]["findings"]


def test_connection_reset_is_also_503(gate, versions):
    body = created(versions[0])
    gate.proxy.always = Fault(reset=True)
    status, out = answer(gate.post("mlflow_webhook", body, mlflow_headers(body)))
    assert status == 503 and gate.store.count() == 0


def test_secret_is_never_in_an_answer(gate, versions):
    body = created(versions[0])
    resp = gate.post("mlflow_webhook", body, mlflow_headers(body, secret="wrong"))
    assert MLFLOW_SECRET.encode() not in resp.get_body()
