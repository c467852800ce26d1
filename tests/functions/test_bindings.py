"""The binding metadata of function_app.app, read through the azure-functions library (DESIGN.md contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import settings
from shared.serve import Schedule

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bindings():
    import function_app

    return {f.get_function_name(): json.loads(f.get_function_json())["bindings"] for f in function_app.functions()}


def trigger(bindings, name):
    (found,) = [b for b in bindings[name] if b["direction"] == "IN"]
    return found


def test_exactly_the_functions_of_the_design(bindings):
    assert sorted(bindings) == ["azureml_events", "databricks_jobs_webhook", "databricks_registry_webhook",
                                "intake", "mlflow_webhook", "notify_teams", "reconcile"]


def test_intake_is_a_queue_trigger_on_the_intake_connection(bindings):
    assert trigger(bindings, "intake") == {"direction": "IN", "type": "queueTrigger", "name": "message",
                                           "queueName": "%EVIDENCE_GATE_INTAKE_QUEUE%", "connection": "EVIDENCE_GATE_INTAKE"}
    assert settings.get("EVIDENCE_GATE_INTAKE_QUEUE") == "evidence-gate-intake"


@pytest.mark.parametrize("name,route", [("mlflow_webhook", "webhooks/mlflow"),
                                        ("databricks_registry_webhook", "webhooks/databricks/registry"),
                                        ("databricks_jobs_webhook", "webhooks/databricks/jobs")])
def test_http_functions_post_on_their_routes_anonymous_with_signature(bindings, name, route):
    t = trigger(bindings, name)
    assert t["type"] == "httpTrigger" and t["route"] == route and t["methods"] == ["POST"]
    assert t["authLevel"] == "ANONYMOUS"  # authenticated by signature / Basic credentials instead
    assert {"direction": "OUT", "type": "http", "name": "$return"} in bindings[name]


def test_azureml_events_is_an_event_grid_trigger(bindings):
    assert trigger(bindings, "azureml_events") == {"direction": "IN", "type": "eventGridTrigger", "name": "event"}


def test_reconcile_timer_schedule_comes_from_the_setting(bindings):
    t = trigger(bindings, "reconcile")
    assert t["type"] == "timerTrigger" and t["schedule"] == "%EVIDENCE_GATE_RECONCILE_SCHEDULE%"
    assert t["runOnStartup"] is False
    default = settings.get("EVIDENCE_GATE_RECONCILE_SCHEDULE")
    assert default == "0 */15 * * * *"
    assert Schedule(default).minutes == {0, 15, 30, 45} and Schedule(default).seconds == {0}


def test_notify_teams_is_registered_with_its_service_bus_binding(bindings):
    t = trigger(bindings, "notify_teams")
    assert t["type"] == "serviceBusTrigger" and t["subscriptionName"] == "teams"
    assert t["topicName"] == "%EVIDENCE_GATE_TOPIC%" and t["connection"] == "EVIDENCE_GATE_SERVICEBUS"


def test_importing_the_app_is_cheap():
    code = ("import sys, function_app; heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('mlflow', 'shared.engine') or m.startswith(('azure.monitor', 'azure.storage', 'shared.engine', 'waitress'))]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
