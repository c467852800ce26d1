"""A version registered inside its still-running run (``log_model(registered_model_name=...)``, the
way MLflow's own examples register) is not failed for LIN-002 while the run is still going: the
registration check is "not ready" until the run ends, for at most the policy's
``running_run_wait_minutes``; then the run's real outcome decides."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import mlflow
import pytest

from shared.errors import VersionNotReady
from shared.policy import load_policy
from shared.report import Trigger
from tests.engine.conftest import rule_ids

TRIGGER = Trigger("mlflow", "model_version.created", "running-run")


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def check(engine, registry, trained, **kwargs):
    return engine.check_version(registry, trained.model, trained.version, trigger=TRIGGER, **kwargs)


def test_registered_inside_the_run_is_checked_once_the_run_ends(kit, engine, registry):
    model, example = kit.sklearn_model
    registered = name("inside-run")
    with mlflow.start_run(experiment_id=kit.experiment_id, tags={"mlflow.source.type": "JOB"}) as run:
        mlflow.log_params({"learning_rate": "0.1"})
        mlflow.log_metric("accuracy", 0.9)
        info = mlflow.sklearn.log_model(model, name="model", input_example=example, registered_model_name=registered,
                                        pip_requirements=["scikit-learn==1.9.1"])
        version = str(info.registered_model_version)
        kit.client.set_model_version_tag(registered, version, "owner", "team-churn")
        with pytest.raises(VersionNotReady, match=f"source run {run.info.run_id} is still RUNNING") as caught:
            engine.check_version(registry, registered, version, trigger=TRIGGER)
        assert caught.value.reason == "source run still running"
    report = engine.check_version(registry, registered, version, trigger=TRIGGER)
    assert "LIN-002" not in rule_ids(report)
    assert report["subject"]["run_id"] == run.info.run_id


def test_a_run_that_fails_after_the_registration_is_reported(kit, engine, registry):
    trained = kit.model_version(name("fails-later"), run_status="RUNNING")
    with pytest.raises(VersionNotReady):
        check(engine, registry, trained)
    kit.client.set_terminated(trained.run_id, "FAILED")
    report = check(engine, registry, trained)
    assert "LIN-002" in rule_ids(report) and report["verdict"] == "fail"


def test_after_the_wait_lin_002_reports_the_run_that_never_ended(kit, engine, registry):
    trained = kit.model_version(name("never-ends"), run_status="RUNNING")
    later = dataclasses.replace(engine, clock=lambda: datetime.now(UTC) + timedelta(minutes=61))
    report = check(later, registry, trained)
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "LIN-002"]
    assert finding["evidence"]["status"] == "RUNNING"


def test_promotions_and_a_zero_wait_never_wait(kit, engine, registry, tmp_path):
    trained = kit.model_version(name("no-wait"), run_status="RUNNING")
    kit.client.set_registered_model_alias(trained.model, "champion", trained.version)
    assert "LIN-002" in rule_ids(check(engine, registry, trained, alias="champion"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("running_run_wait_minutes: 0\n")
    no_wait = dataclasses.replace(engine, policy=load_policy(str(policy)))
    assert "LIN-002" in rule_ids(check(no_wait, registry, trained))
