"""Databricks job notifications, generic webhook destination (``POST /api/webhooks/databricks/jobs``).

HTTP Basic credentials from ``DATABRICKS_JOBS_WEBHOOK_USERNAME`` / ``..._PASSWORD``. The MLflow
runs of a job run are found by the tag ``mlflow.databricks.jobRunID`` in the tracking server the
wiring names (``Services.databricks_jobs_registry``, the ``databricks`` tracking URI).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared import settings
from shared.jobs import JobRun
from shared.sources import JOB_FAILED, RUN, RegistryEvent, ignored
from shared.sources._parse import load_json, obj, text
from shared.sources.signatures import verify_basic

SOURCE = "databricks-jobs"
JOB_RUN_TAG = "mlflow.databricks.jobRunID"


def verify(headers: Mapping[str, str]) -> None:
    verify_basic(headers, settings.get("DATABRICKS_JOBS_WEBHOOK_USERNAME"), settings.get("DATABRICKS_JOBS_WEBHOOK_PASSWORD"))


def parse(body: bytes | str) -> RegistryEvent:
    payload = obj(load_json(body, "Databricks job notification"), "Databricks job notification body")
    event_type = text(payload.get("event_type"), "event_type")
    if event_type not in ("jobs.on_success", "jobs.on_failure"):
        return ignored(SOURCE, event_type, f"{event_type[:80]} needs no check")
    run = obj(payload.get("run"), "run")
    job = obj(payload.get("job") if payload.get("job") is not None else {}, "job")
    task = payload.get("task")
    task_key = text(obj(task, "task").get("task_key"), "task.task_key", required=False) if task is not None else None
    info = JobRun(
        platform="databricks",
        run_id=text(run.get("run_id"), "run.run_id"),
        parent_run_id=text(run.get("parent_run_id"), "run.parent_run_id", required=False),
        job_id=text(job.get("job_id"), "job.job_id", required=False),
        job_name=text(job.get("name"), "job.name", required=False),
        status="succeeded" if event_type == "jobs.on_success" else "failed",
        task=task_key,
    )
    event_id = f"{info.job_id or '-'}:{info.run_id}:{event_type}"
    action = RUN if event_type == "jobs.on_success" else JOB_FAILED
    return RegistryEvent(source=SOURCE, event_type=event_type, action=action, event_id=event_id, job=info)
