"""Databricks workspace Model Registry webhooks (``POST /api/webhooks/databricks/registry``).

The parser does not name the registry: the wiring does (``Services.databricks_registry``, the
``databricks`` tracking URI with databricks-sdk authentication: ``DATABRICKS_HOST`` +
``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET``, or any other databricks-sdk credential).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared import settings
from shared.errors import BadInput
from shared.sources import PROMOTION, REGISTRATION, TAG_SET, RegistryEvent, ignored
from shared.sources._parse import load_json, obj, text
from shared.sources.signatures import verify_databricks

SOURCE = "databricks-registry"

_TRANSITIONED_TO = re.compile(r"^MODEL_VERSION_TRANSITIONED_TO_([A-Z]+)$")
_REQUEST_TO = re.compile(r"^TRANSITION_REQUEST_TO_([A-Z]+)_CREATED$")
_STAGES = {"PRODUCTION": "Production", "STAGING": "Staging", "ARCHIVED": "Archived", "NONE": "None"}
_KNOWN_IGNORED = {"COMMENT_CREATED": "comments need no check", "REGISTERED_MODEL_CREATED": "a new registered model has no version yet",
                  "TRANSITION_REQUEST_CREATED": None, "MODEL_VERSION_TRANSITIONED_STAGE": None}


def verify(headers: Mapping[str, str], body: bytes) -> None:
    verify_databricks(headers, body, settings.get("DATABRICKS_WEBHOOK_SECRET"))


def _stage(value) -> str:
    stage = text(value, "to_stage")
    return _STAGES.get(stage.upper(), stage)


def parse(body: bytes | str) -> RegistryEvent:
    payload = obj(load_json(body, "Databricks registry webhook"), "Databricks registry webhook body")
    event = text(payload.get("event"), "event")
    webhook_id = text(payload.get("webhook_id"), "webhook_id", required=False) or "-"
    timestamp = text(payload.get("event_timestamp"), "event_timestamp", required=False) or "-"
    event_id = f"{webhook_id}:{timestamp}:{event}"
    common = {"source": SOURCE, "event_type": event, "event_id": event_id,
              "event_time": _iso(payload.get("event_timestamp"))}
    upper = event.upper()

    def subject() -> dict:
        return {"model": text(payload.get("model_name"), "model_name"), "version": text(payload.get("version"), "version")}

    if upper == "MODEL_VERSION_CREATED":
        return RegistryEvent(action=REGISTRATION, **subject(), **common)
    if upper in ("MODEL_VERSION_TRANSITIONED_STAGE", "TRANSITION_REQUEST_CREATED"):
        return RegistryEvent(action=PROMOTION, stage=_stage(payload.get("to_stage")), **subject(), **common)
    match = _TRANSITIONED_TO.match(upper) or _REQUEST_TO.match(upper)
    if match:
        return RegistryEvent(action=PROMOTION, stage=_STAGES.get(match.group(1), match.group(1).title()), **subject(), **common)
    if upper == "MODEL_VERSION_TAG_SET":
        tags = payload.get("tags")
        if tags is None:
            tags = []
        if not isinstance(tags, list):
            raise BadInput("tags must be an array of {key, value}")
        keys = tuple(text(obj(t, "tags[]").get("key"), "tags[].key") for t in tags)
        return RegistryEvent(action=TAG_SET, tag_keys=keys, **subject(), **common)
    reason = _KNOWN_IGNORED.get(upper) or f"{event[:80]} needs no check"
    return ignored(SOURCE, event, reason, event_id)


def _iso(value) -> str | None:
    """Databricks sends epoch milliseconds; the report carries RFC 3339."""
    from datetime import UTC, datetime

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        millis = float(value)
        return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return None
