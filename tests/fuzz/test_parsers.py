"""Property-based tests of every payload parser and signature check: any input either parses or
raises the documented error (BadInput for payloads, Unauthorized for signatures), and the HTTP
functions answer it with 200 or a 4xx, never a 500 or an escaped exception."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import BadInput, Unauthorized
from shared.sources import RegistryEvent, azureml, databricks_jobs, databricks_registry, mlflow, signatures

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORKSPACE = ("/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws")

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                    st.sampled_from(["", " ", "1", "3.0", "\x00", "a:b", "models/m:1", "é", "x" * 1100]))
json_values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)), max_leaves=20)


def shaped(fields: dict[str, list]) -> st.SearchStrategy[dict]:
    """Objects with the parser's own keys (plausible or hostile values) plus random extra keys."""
    parts = {k: st.one_of(st.sampled_from(v), json_values) for k, v in fields.items()}
    return st.fixed_dictionaries({}, optional=parts).flatmap(
        lambda d: st.dictionaries(st.text(max_size=10), json_values, max_size=3).map(lambda extra: {**extra, **d}))


def bodies(objects: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        json_values.map(lambda v: json.dumps(v).encode()),
        objects.map(lambda v: json.dumps(v).encode()),
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    )


MLFLOW_DATA = shaped({"name": ["m", "credit-x", ""], "version": ["1", 2, "v"], "alias": ["champion", "shadow"],
                      "key": ["approved_by", "team"], "value": ["rita"], "run_id": [None, "abc"]})
MLFLOW = shaped({"entity": ["model_version", "model_version_alias", "model_version_tag", "registered_model", "x y"],
                 "action": ["created", "set", "deleted"], "timestamp": ["2026-01-01T00:00:00Z", 5],
                 "data": [{"name": "m", "version": "1", "alias": "champion", "key": "approved_by"}]}).flatmap(
    lambda d: MLFLOW_DATA.map(lambda data: {**d, "data": data}) if isinstance(d.get("data"), dict) else st.just(d))
DATABRICKS = shaped({"event": ["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE", "MODEL_VERSION_TAG_SET",
                               "TRANSITION_REQUEST_TO_PRODUCTION_CREATED", "MODEL_VERSION_TRANSITIONED_TO_STAGING",
                               "COMMENT_CREATED", "weird"],
                     "model_name": ["m"], "version": ["1", 1], "to_stage": ["Production", "staging", "None"],
                     "webhook_id": ["w"], "event_timestamp": [1700000000000, "x", 1e300, -1e20],
                     "tags": [[{"key": "approved_by", "value": "r"}], [{}], ["x"], {}]})
JOBS = shaped({"event_type": ["jobs.on_success", "jobs.on_failure", "jobs.on_start"],
               "run": [{"run_id": 1, "parent_run_id": "2"}, {"run_id": None}, []],
               "job": [{"job_id": 5, "name": "train"}, None, "x"], "task": [{"task_key": "t"}, None, 3]})
AZUREML_DATA = shaped({"modelName": ["m"], "ModelVersion": [1, "2"], "runId": ["r"], "runStatus": ["Failed", "ok"],
                       "ModelIds": ["m:1,n:2", ["m:1"], ":", [":"], []], "serviceName": ["svc"],
                       "experimentName": ["e"]})
EVENTGRID = shaped({"id": ["e-1"], "topic": [WORKSPACE, "/subscriptions/x"], "subject": ["models/m:1", "experiments/1/runs/r"],
                    "eventType": [azureml.PREFIX + t for t in ("ModelRegistered", "RunCompleted", "RunStatusChanged",
                                                               "ModelDeployed", "DatasetDriftDetected")],
                    "eventTime": ["2026-01-01T00:00:00Z"], "data": [{}]}).flatmap(
    lambda d: AZUREML_DATA.map(lambda data: {**d, "data": data}))
CLOUDEVENT = EVENTGRID.map(lambda d: {"specversion": "1.0", "id": d.get("id"), "source": d.get("topic"),
                                      "type": d.get("eventType"), "subject": d.get("subject"),
                                      "time": d.get("eventTime"), "data": d.get("data")})


def parses_or_bad_input(parse, *args) -> None:
    try:
        event = parse(*args)
    except BadInput:
        return
    assert isinstance(event, RegistryEvent)
    assert event.action and event.source and event.event_type


@FUZZ
@given(bodies(MLFLOW), st.one_of(st.none(), st.text(max_size=20)))
def test_mlflow_parser(body, delivery_id):
    parses_or_bad_input(mlflow.parse, body, delivery_id)


@FUZZ
@given(bodies(DATABRICKS))
def test_databricks_registry_parser(body):
    parses_or_bad_input(databricks_registry.parse, body)


@FUZZ
@given(bodies(JOBS))
def test_databricks_jobs_parser(body):
    parses_or_bad_input(databricks_jobs.parse, body)


@FUZZ
@given(st.one_of(EVENTGRID, CLOUDEVENT, json_values))
def test_azureml_envelope_parser_both_schemas(envelope):
    parses_or_bad_input(azureml.parse_envelope, envelope)


@FUZZ
@given(EVENTGRID, st.booleans())
def test_azureml_function_event_objects_both_schemas(envelope, cloud):
    """What the Functions runtime hands the function: func.EventGridEvent or func.CloudEvent."""
    def s(key):
        value = envelope.get(key)
        return value if isinstance(value, str) else None

    if cloud:
        event = func.CloudEvent(id=s("id"), source=s("topic"), type=s("eventType"), subject=s("subject"),
                                time=datetime.now(UTC), data=envelope.get("data"), specversion="1.0", data_content_type=None,
                                data_schema=None)
    else:
        event = func.EventGridEvent(id=s("id"), data=envelope.get("data"), topic=s("topic"), subject=s("subject"),
                                    event_type=s("eventType"), event_time=datetime.now(UTC), data_version="1")
    parses_or_bad_input(azureml.parse_function_event, event)


headers_strategy = st.dictionaries(
    st.sampled_from(["X-MLflow-Signature", "X-MLflow-Timestamp", "X-MLflow-Delivery-Id", "X-Databricks-Signature",
                     "Authorization", "x-mlflow-signature", "Content-Type"]),
    st.one_of(st.text(max_size=60), st.sampled_from(["v1,AAAA", "v1,***", "Basic Og==", "Basic ###", "0" * 64,
                                                     "1700000000", "9" * 13])), max_size=6)


@FUZZ
@given(headers_strategy, st.binary(max_size=64), st.one_of(st.none(), st.text(max_size=10)))
def test_signature_checks_only_refuse(headers, body, secret):
    for check in (lambda: signatures.verify_mlflow(headers, body, secret),
                  lambda: signatures.verify_databricks(headers, body, secret),
                  lambda: signatures.verify_basic(headers, secret, secret)):
        try:
            check()
        except Unauthorized:
            pass


# -- through the function objects ------------------------------------------------------------------
@pytest.fixture(scope="module")
def functions():
    import function_app
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.services import Services

    services = Services(engine=Engine(load_policy(), None))  # no store: nothing is written
    return {f.get_function_name(): f.get_user_function() for f in function_app.build_app(lambda: services).get_functions()}


@pytest.fixture(scope="module")
def no_registry():
    """The pipeline is replaced: these tests are about the answer to the input, not the check."""
    from shared import pipeline

    original = pipeline.process
    pipeline.process = lambda event, services, **kwargs: pipeline.Outcome("ignored", "fuzz")
    yield
    pipeline.process = original


SECRET = "fuzz-secret"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["mlflow", "databricks", "jobs"]), body=st.one_of(bodies(MLFLOW), bodies(DATABRICKS), bodies(JOBS)),
       signed=st.booleans(), extra=st.text(alphabet=string.printable, max_size=10))
def test_http_functions_answer_200_or_4xx_never_500(functions, no_registry, monkeypatch, route, body, signed, extra):
    import time
    import uuid

    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("DATABRICKS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("DATABRICKS_JOBS_WEBHOOK_USERNAME", "u")
    monkeypatch.setenv("DATABRICKS_JOBS_WEBHOOK_PASSWORD", SECRET)
    headers = {"X-Extra": extra}
    if route == "mlflow":
        name = "mlflow_webhook"
        if signed:
            delivery, ts = str(uuid.uuid4()), str(int(time.time()))
            headers.update({"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
                            "X-MLflow-Signature": signatures.mlflow_signature(SECRET, delivery, ts, body)})
    elif route == "databricks":
        name = "databricks_registry_webhook"
        if signed:
            headers["X-Databricks-Signature"] = signatures.databricks_signature(SECRET, body)
    else:
        name = "databricks_jobs_webhook"
        if signed:
            headers["Authorization"] = signatures.basic_authorization("u", SECRET)
    req = func.HttpRequest("POST", "http://localhost/api/x", headers=headers, params={}, route_params={}, body=body)
    resp = functions[name](req=req)
    assert resp.status_code in (200, 400, 401, 413), (resp.status_code, resp.get_body())
    if not signed:
        assert resp.status_code == 401
    out = json.loads(resp.get_body())
    assert isinstance(out, dict)
