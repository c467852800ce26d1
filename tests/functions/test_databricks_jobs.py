"""`databricks_jobs_webhook`: Basic credentials, on_success -> run rules on the job run's MLflow
runs (found by `mlflow.databricks.jobRunID`), on_failure -> JOB-001, string and numeric ids."""

from __future__ import annotations

import json
import random

import pytest

from tests.functions.conftest import basic, payload


def post(gate, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = gate.post("databricks_jobs_webhook", raw, basic() if headers is None else headers)
    return resp.status_code, json.loads(resp.get_body())


@pytest.fixture(scope="module")
def job_run(fn_kit):
    job_run_id = str(random.randrange(10**13, 10**14))
    run_id = fn_kit.run(tags={"mlflow.databricks.jobRunID": job_run_id, "mlflow.databricks.jobID": "281874479417551"})
    fn_kit.client.set_terminated(run_id, "FINISHED")
    return job_run_id, run_id


@pytest.mark.parametrize("headers", [{}, basic(password="wrong"), basic(user="mallory"), {"Authorization": "Bearer x"},
                                     {"Authorization": "Basic %%%"}])
def test_wrong_or_missing_credentials_are_401(gate, headers):
    status, out = post(gate, payload("databricks-jobs-on-success.json"), headers)
    assert status == 401 and out["error"] == "unauthorized"


def test_no_credentials_configured_refuses_everything(gate, monkeypatch):
    monkeypatch.delenv("DATABRICKS_JOBS_WEBHOOK_PASSWORD")
    status, out = post(gate, payload("databricks-jobs-on-success.json"))
    assert status == 401 and "not set" in out["message"]


def test_on_success_checks_the_runs_of_the_job_run(gate, job_run):
    job_run_id, run_id = job_run
    body = payload("databricks-jobs-on-success.json")
    body["run"]["run_id"] = job_run_id
    status, out = post(gate, body)
    assert status == 200, out
    (report,) = gate.reports()
    assert report["check"] == "run" and report["subject"]["run_id"] == run_id
    assert report["trigger"]["event_id"] == f"281874479417551:{job_run_id}:jobs.on_success"
    assert post(gate, body)[1]["duplicates"] == 1 and gate.store.count() == 1


def test_task_level_notification_finds_runs_by_the_parent_run_id_and_numeric_ids(gate, job_run):
    job_run_id, run_id = job_run
    body = {"event_type": "jobs.on_success", "workspace_id": 1, "task": {"task_key": "train"},
            "run": {"run_id": 1, "parent_run_id": int(job_run_id)}, "job": {"job_id": 281874479417551}}
    status, out = post(gate, body)
    assert status == 200 and [r["run_id"] for r in out["reports"]] == [run_id]


def test_on_success_without_mlflow_runs_is_answered_skipped(gate):
    status, out = post(gate, payload("databricks-jobs-on-success.json"))
    assert status == 200 and out["status"] == "skipped" and "no MLflow runs" in out["reason"]


def test_on_failure_with_numeric_ids_is_job_001(gate):
    status, out = post(gate, payload("databricks-jobs-task-on-failure.numeric-ids.json"))
    assert status == 200, out
    (report,) = gate.reports()
    assert {f["rule_id"] for f in report["findings"]} == {"JOB-001"}
    assert report["subject"]["run_id"] == "41847992357944"
    assert report["trigger"]["event_id"] == "281874479417551:41847992357944:jobs.on_failure"


def test_other_event_types_are_ignored(gate):
    body = payload("databricks-jobs-on-success.json")
    body["event_type"] = "jobs.on_start"
    status, out = post(gate, body)
    assert status == 200 and out["status"] == "ignored"


@pytest.mark.parametrize("body", [b"nope", {"event_type": "jobs.on_failure"}, {"event_type": "jobs.on_failure", "run": {"run_id": []}},
                                  {"event_type": "jobs.on_success", "run": {"run_id": True}}])
def test_malformed_is_400(gate, body):
    status, out = post(gate, body)
    assert status == 400 and out["error"] == "bad_input"
