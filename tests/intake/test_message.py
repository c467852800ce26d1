"""The intake message codec: every kind of event survives the queue; anything else is BadInput
with one plain line."""

from __future__ import annotations

import json

import pytest

from shared.errors import BadInput
from shared.intake.message import IntakeMessage, decode, encode
from shared.jobs import JobRun
from shared.sources import DEPLOYED, JOB_FAILED, PROMOTION, RUN, RegistryEvent

EVENTS = [
    RegistryEvent("mlflow", "model_version_alias.created", PROMOTION, event_id="d-1", event_time="2026-01-01T00:00:00Z",
                  registry="http://127.0.0.1:5000", model="churn", version="3", alias="champion"),
    RegistryEvent("databricks-jobs", "jobs.on_success", RUN, event_id="j-1", registry="databricks",
                  job=JobRun("databricks", "123", job_name="train", parent_run_id="99"), run_ids=("r1", "r2")),
    RegistryEvent("azureml", "Microsoft.MachineLearningServices.ModelDeployed", DEPLOYED, event_id="e-1",
                  workspace="/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w",
                  deployed=(("churn", "3"), ("fraud", "7")), service="endpoint-1"),
    RegistryEvent("azureml", "Microsoft.MachineLearningServices.RunStatusChanged", JOB_FAILED,
                  job=JobRun("azureml", "run-9", status="failed"), tag_keys=("a",), notes=("n",)),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_type)
def test_every_event_kind_survives_the_queue(event):
    message = IntakeMessage(event, accepted_ms=1_767_225_600_000, attempt=3)
    assert decode(encode(message)) == message
    assert decode(encode(message).encode()) == message
    assert decode(encode(message)).next_attempt().attempt == 4


@pytest.mark.parametrize("body, problem", [
    (b"\xff\xfe", "not JSON"),
    ("[1]", "expected a JSON object"),
    ('{"v": 2}', "expected a JSON object"),
    ('{"v": 1, "attempt": 0, "accepted_ms": 1, "event": {}}', "'attempt' (>= 1)"),
    ('{"v": 1, "attempt": 1, "accepted_ms": 1, "event": {"source": "x", "event_type": "y", "action": "explode"}}',
     "known action"),
    ('{"v": 1, "attempt": 1, "accepted_ms": 1, "event": {"source": "x", "event_type": "y", "action": "run", "evil": 1}}',
     "unknown event field(s) evil"),
    ('{"v": 1, "attempt": 1, "accepted_ms": 1, "event": {"source": "x", "event_type": "y", "action": "run",'
     ' "job": {"platform": "databricks"}}}', "malformed"),
    ('{"v": 1, "attempt": 1, "accepted_ms": 1, "event": {"source": "x", "event_type": "y", "action": "deployed",'
     ' "deployed": [["a"]]}}', "malformed"),
])
def test_anything_else_is_bad_input_with_one_plain_line(body, problem):
    with pytest.raises(BadInput) as caught:
        decode(body)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_the_message_is_compact_json_without_empty_fields():
    body = json.loads(encode(IntakeMessage(EVENTS[0], accepted_ms=5)))
    assert body == {"v": 1, "attempt": 1, "accepted_ms": 5, "event": {
        "source": "mlflow", "event_type": "model_version_alias.created", "action": "promotion", "event_id": "d-1",
        "event_time": "2026-01-01T00:00:00Z", "registry": "http://127.0.0.1:5000", "model": "churn", "version": "3",
        "alias": "champion"}}
