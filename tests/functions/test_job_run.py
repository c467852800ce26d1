"""One job-run type (shared.jobs.JobRun): what the Databricks job and Azure ML parsers produce is
what JOB-001 reads, handed over as is; the rules do not depend on the parsers, nor they on the rules."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from shared import pipeline
from shared.engine import Engine
from shared.jobs import JobRun
from shared.policy import load_policy
from shared.report import Trigger
from shared.services import Services
from shared.sources import JOB_FAILED, RUN, azureml, databricks_jobs
from tests.functions.conftest import payload

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_databricks_job_notifications_carry_a_job_run():
    failed = databricks_jobs.parse(json.dumps(payload("databricks-jobs-task-on-failure.numeric-ids.json")))
    assert failed.action == JOB_FAILED
    assert failed.job == JobRun(
        platform="databricks",
        run_id="41847992357944",
        job_name="train-churn-model",
        job_id="281874479417551",
        status="failed",
        task="train",
        parent_run_id="41847992357900",
    )
    succeeded = databricks_jobs.parse(json.dumps(payload("databricks-jobs-on-success.json")))
    assert succeeded.action == RUN
    assert isinstance(succeeded.job, JobRun) and succeeded.job.status == "succeeded"


def test_azureml_failed_run_carries_a_job_run():
    (envelope,) = payload("azureml-run-status-changed.eventgrid.json")
    envelope["data"]["runStatus"] = "Failed"
    event = azureml.parse_envelope(envelope)
    assert event.action == JOB_FAILED
    assert event.job == JobRun(
        platform="azureml",
        run_id="my_exp1_1554835758_38dbaa94",
        job_name="my_exp1",
        job_id="0fa9dfaa-cba3-4fa7-b590-23e48548f5c1",
        status="failed",
    )


def test_the_pipeline_hands_the_parsed_job_run_to_job_001(monkeypatch):
    event = databricks_jobs.parse(json.dumps(payload("databricks-jobs-task-on-failure.numeric-ids.json")))
    engine = Engine(load_policy(), None, clock=lambda: NOW)
    received, reports = [], []

    def job_failed(registry, job, *, trigger):
        received.append(job)
        return Engine.job_failed(engine, registry, job, trigger=trigger)

    monkeypatch.setattr(engine, "job_failed", job_failed)
    monkeypatch.setattr(pipeline, "_run_checks",
                        lambda services, event, registry, checks, notes, outcome: reports.extend(c[0]() for c in checks))
    pipeline.process(event, Services(engine=engine))
    assert received == [event.job] and received[0] is event.job  # no conversion on the way
    (finding,) = reports[0]["findings"]
    assert finding["rule_id"] == "JOB-001"
    assert finding["message"] == (
        "Training job 'train-churn-model' run 41847992357944 (task train) ended failed on databricks."
    )
    # The report's evidence keeps its fields (parent_run_id is for finding MLflow runs, not reported)
    assert finding["evidence"] == {"platform": "databricks", "run_id": "41847992357944", "job_id": "281874479417551",
                                   "job_name": "train-churn-model", "status": "failed", "task": "train"}


def test_a_job_run_without_a_status_is_reported_failed():
    """JOB-001 is about a failed run: a JobRun built without a status (e.g. by a caller) reads 'failed'."""
    report = Engine(load_policy(), None, clock=lambda: NOW).job_failed(
        "databricks", JobRun("databricks", "77"), trigger=Trigger("databricks-jobs", "jobs.on_failure"))
    (finding,) = report["findings"]
    assert finding["message"] == "Training job run 77 ended failed on databricks."
    assert finding["evidence"]["status"] == "failed"


def test_rules_and_parsers_do_not_import_each_other():
    code = (
        "import sys\n"
        "import shared.engine, shared.rules, shared.rules.base\n"
        "assert not [m for m in sys.modules if m.startswith('shared.sources')], 'rules import the parsers'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    code = (
        "import sys\n"
        "import shared.sources.azureml, shared.sources.databricks_jobs\n"
        "assert not [m for m in sys.modules if m.startswith('shared.rules')], 'the parsers import the rules'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
