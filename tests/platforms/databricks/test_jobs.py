"""Databricks job notifications on the local workspace: a multi-task job's notification names the
job run, MLflow tags each run with its *task* run id (mlflow#14266); the task runs are found
through the Jobs API (`runs/get` -> `tasks[].run_id`)."""

from __future__ import annotations

import json

from databricks.sdk.service import jobs

from shared import pipeline
from shared.engine import Engine
from shared.policy import load_policy
from shared.services import Services
from shared.sinks.store import ReportStore
from shared.sources import databricks_jobs
from tests.platforms.databricks.workspace import WORKSPACE_ID


def _notification(job_run_id: int) -> bytes:
    # the generic webhook destination's body (tests/functions/payloads/databricks-jobs-on-success.json)
    return json.dumps({"event_type": "jobs.on_success", "workspace_id": WORKSPACE_ID, "run": {"run_id": str(job_run_id)},
                       "job": {"job_id": "88", "name": "train-churn-model"}}).encode()


def test_a_multi_task_job_notification_checks_the_runs_of_its_tasks(kit, workspace, tmp_path):
    train = kit.run(tags={"mlflow.databricks.jobID": "88", "mlflow.databricks.jobRunID": "9102"})
    kit.client.set_terminated(train)
    workspace.job_runs[9101] = jobs.Run(job_id=88, run_id=9101, tasks=[jobs.RunTask(task_key="prepare", run_id=9103),
                                                                        jobs.RunTask(task_key="train", run_id=9102)])
    event = databricks_jobs.parse(_notification(9101))
    services = Services(engine=Engine(load_policy(), ReportStore(str(tmp_path / "r.sqlite"))))
    assert event.registry is None and services.registry_for(event) == "databricks"  # the wiring names it
    outcome = pipeline.process(event, services)
    assert outcome.status == "checked"
    assert [r["run_id"] for r in outcome.reports] == [train]
    assert workspace.count("/jobs/runs/get") == 1


def test_a_job_run_the_jobs_api_does_not_know_is_skipped_not_failed(workspace, tmp_path):
    event = databricks_jobs.parse(_notification(9999))
    outcome = pipeline.process(event, Services(engine=Engine(load_policy(), ReportStore(str(tmp_path / "r.sqlite")))))
    assert (outcome.status, outcome.reports) == ("skipped", [])
    assert "no MLflow runs are tagged with job run 9999" in outcome.reason
