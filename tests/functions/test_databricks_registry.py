"""`databricks_registry_webhook`: Databricks Model Registry payload shapes reach the right checks
(the gate's services check Databricks registry events against the local MLflow server)."""

from __future__ import annotations

import json

import pytest

from tests.functions.conftest import databricks_headers, payload, unique
from tests.support.proxy import Fault


@pytest.fixture(scope="module")
def model(fn_kit):
    name = unique("dbx-reg")
    v1 = fn_kit.model_version(name, version_tags={"owner": "team-churn", "approved_by": "rita"})
    fn_kit.client.transition_model_version_stage(name, v1.version, "Production")
    v2 = fn_kit.model_version(name)
    return name, v1, v2


def event(name: str, model: str, version: str, **fields) -> bytes:
    body = payload(name)
    body.update(model_name=model, version=version, **fields)
    return json.dumps(body).encode()


def post(gate, raw, headers=None):
    resp = gate.post("databricks_registry_webhook", raw, databricks_headers(raw) if headers is None else headers)
    return resp.status_code, json.loads(resp.get_body())


@pytest.mark.parametrize("case", ["missing", "wrong", "tampered", "uppercase_ok"])
def test_signature(gate, model, case):
    name, v1, _ = model
    raw = event("databricks-registry-comment-created.json", name, v1.version)
    headers = databricks_headers(raw)
    if case == "missing":
        headers.pop("X-Databricks-Signature")
    elif case == "wrong":
        headers = databricks_headers(raw, secret="nope")
    elif case == "tampered":
        raw = raw.replace(b"COMMENT", b"COMMENT ")
    elif case == "uppercase_ok":
        headers["X-Databricks-Signature"] = headers["X-Databricks-Signature"].upper()
    status, out = post(gate, raw, headers)
    assert status == (200 if case == "uppercase_ok" else 401), out


def test_no_secret_configured_refuses_every_delivery(gate, model, monkeypatch, caplog):
    monkeypatch.delenv("DATABRICKS_WEBHOOK_SECRET")
    name, v1, _ = model
    raw = event("databricks-registry-version-created.json", name, v1.version)
    status, out = post(gate, raw)
    assert status == 401 and "DATABRICKS_WEBHOOK_SECRET is not set" in caplog.text


def test_version_created_is_a_registration_check_and_duplicates_give_one_report(gate, model):
    name, _, v2 = model
    raw = event("databricks-registry-version-created.json", name, v2.version)
    first, second = post(gate, raw), post(gate, raw)
    assert first[0] == second[0] == 200
    assert first[1]["reports"][0]["report_id"] == second[1]["reports"][0]["report_id"]
    (report,) = gate.reports()
    assert report["check"] == "registration" and report["trigger"]["source"] == "databricks-registry"
    assert report["trigger"]["event_id"] == "c5596721253c4b429368cf6f4341b88a:1589859029343:MODEL_VERSION_CREATED"


@pytest.mark.parametrize("fixture,fields", [
    ("databricks-registry-transitioned-stage.json", {}),
    ("databricks-registry-transitioned-stage.json", {"event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"}),
    ("databricks-registry-transitioned-stage.json", {"event": "TRANSITION_REQUEST_CREATED"}),
    ("databricks-registry-transitioned-stage.json", {"event": "TRANSITION_REQUEST_TO_PRODUCTION_CREATED"}),
])
def test_transitions_and_requests_to_production_are_promotion_checks(gate, model, fixture, fields):
    name, v1, _ = model
    status, out = post(gate, event(fixture, name, v1.version, **fields))
    assert status == 200, out
    (report,) = gate.reports()
    assert report["check"] == "promotion" and report["subject"]["stage"] == "Production"


def test_transition_to_staging_is_ignored(gate, model):
    name, v1, _ = model
    status, out = post(gate, event("databricks-registry-transitioned-stage.json", name, v1.version, to_stage="Staging"))
    assert status == 200 and out["status"] == "ignored" and "Staging" in out["reason"]


def test_approval_tag_set_rechecks_the_production_promotion(gate, model):
    name, v1, _ = model
    status, out = post(gate, event("databricks-registry-tag-set.json", name, v1.version,
                                   tags=[{"key": "approved_by", "value": "rita"}]))
    assert status == 200, out
    (report,) = gate.reports()
    assert report["check"] == "promotion" and report["subject"]["stage"] == "Production"


def test_other_tags_and_comments_are_ignored_with_the_reason(gate, model):
    name, v1, _ = model
    status, out = post(gate, event("databricks-registry-tag-set.json", name, v1.version))
    assert status == 200 and out["status"] == "ignored" and "key1, key2" in out["reason"]
    status, out = post(gate, event("databricks-registry-comment-created.json", name, v1.version))
    assert status == 200 and out["status"] == "ignored" and "comment" in out["reason"]
    assert gate.store.count() == 0


@pytest.mark.parametrize("raw", [b"", b"null", b'{"event": 5.5}', b'{"event": "MODEL_VERSION_CREATED"}',
                                 b'{"event": "MODEL_VERSION_TAG_SET", "model_name": "m", "version": "1", "tags": "x"}'])
def test_malformed_is_400(gate, raw):
    status, out = post(gate, raw)
    assert status == 400 and out["error"] == "bad_input"


def test_stopped_registry_gives_503_then_the_report(gate, model):
    name, _, v2 = model
    raw = event("databricks-registry-version-created.json", name, v2.version)
    gate.proxy.always = Fault(status=503, retry_after=7)
    status, out = post(gate, raw)
    assert status == 503 and gate.store.count() == 0
    gate.proxy.reset()
    status, out = post(gate, raw)
    assert status == 200 and gate.store.count() == 1
