"""The intake message: one normalised :class:`~shared.sources.RegistryEvent` and its delivery history.

The queue carries it as compact JSON text (base64-encoded on the queue, as the Functions queue
trigger expects by default, host.json ``extensions.queues.messageEncoding``)::

    {"v": 1, "attempt": 1, "accepted_ms": 1767225600000, "event": {"source": "mlflow", ...}}

``attempt`` counts the checks tried (1 for the first); ``accepted_ms`` is when the delivery was
accepted, the start of every age bound (:mod:`shared.intake.decide`). A re-enqueued message is
the same event with ``attempt + 1`` and the same ``accepted_ms``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from shared.errors import BadInput
from shared.jobs import JobRun
from shared.sources import DEPLOYED, IGNORED, JOB_FAILED, PROMOTION, REGISTRATION, RUN, TAG_SET, RegistryEvent

VERSION = 1
ACTIONS = frozenset({REGISTRATION, PROMOTION, TAG_SET, RUN, JOB_FAILED, DEPLOYED, IGNORED})
_EVENT_FIELDS = {f.name for f in dataclasses.fields(RegistryEvent)}
_JOB_FIELDS = {f.name for f in dataclasses.fields(JobRun)}


@dataclass(frozen=True)
class IntakeMessage:
    event: RegistryEvent
    accepted_ms: int
    attempt: int = 1

    def next_attempt(self) -> IntakeMessage:
        return dataclasses.replace(self, attempt=self.attempt + 1)


def encode(message: IntakeMessage) -> str:
    event = dataclasses.asdict(message.event)
    body = {"v": VERSION, "attempt": message.attempt, "accepted_ms": message.accepted_ms,
            "event": {k: v for k, v in event.items() if v not in (None, (), [])}}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def decode(data: bytes | str) -> IntakeMessage:
    """The message in ``data``; :class:`BadInput` (saying what is wrong) for anything else."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadInput("not an intake message: the body is not JSON") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise BadInput(f"not an intake message: expected a JSON object with \"v\": {VERSION}")
    attempt, accepted = body.get("attempt"), body.get("accepted_ms")
    if not isinstance(attempt, int) or attempt < 1 or not isinstance(accepted, int):
        raise BadInput("intake message: 'attempt' (>= 1) and 'accepted_ms' must be integers")
    return IntakeMessage(_event(body.get("event")), accepted_ms=accepted, attempt=attempt)


def _event(data) -> RegistryEvent:
    if not isinstance(data, dict):
        raise BadInput("intake message: 'event' must be an object")
    unknown = sorted(set(data) - _EVENT_FIELDS)
    if unknown:
        raise BadInput(f"intake message: unknown event field(s) {', '.join(unknown)}")
    if data.get("action") not in ACTIONS or not isinstance(data.get("source"), str) \
            or not isinstance(data.get("event_type"), str):
        raise BadInput("intake message: the event needs a source, an event_type and a known action")
    fields = dict(data)
    try:
        for name in ("tag_keys", "run_ids", "notes"):
            fields[name] = tuple(str(x) for x in fields.get(name) or ())
        fields["deployed"] = tuple((str(m), str(v)) for m, v in fields.get("deployed") or ())
        job = fields.get("job")
        if job is not None:
            if not isinstance(job, dict) or set(job) - _JOB_FIELDS:
                raise BadInput("intake message: 'job' is not a job run")
            fields["job"] = JobRun(**job)
    except (TypeError, ValueError):
        raise BadInput("intake message: malformed event fields") from None
    return RegistryEvent(**fields)
