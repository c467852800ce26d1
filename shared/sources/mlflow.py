"""Open-source MLflow 3 webhooks (``POST /api/webhooks/mlflow``).

Body ``{"entity", "action", "timestamp", "data"}``. The parser does not name the registry: the
wiring does (``Services.mlflow_registry``, ``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared import settings
from shared.errors import BadInput
from shared.sources import PROMOTION, REGISTRATION, TAG_SET, RegistryEvent, ignored
from shared.sources._parse import load_json, obj, text
from shared.sources.signatures import verify_mlflow

SOURCE = "mlflow"


def verify(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
    """Check ``X-MLflow-Signature``; returns the delivery id (the event id)."""
    return verify_mlflow(headers, body, settings.get("MLFLOW_WEBHOOK_SECRET"), now=now)


def parse(body: bytes | str, delivery_id: str | None = None) -> RegistryEvent:
    payload = obj(load_json(body, "MLflow webhook"), "MLflow webhook body")
    entity = text(payload.get("entity"), "entity")
    action = text(payload.get("action"), "action")
    event_type = f"{entity}.{action}"
    event_time = text(payload.get("timestamp"), "timestamp", required=False)
    data = obj(payload.get("data"), "data")
    common = {"source": SOURCE, "event_type": event_type, "event_id": delivery_id, "event_time": event_time}

    if event_type == "model_version.created":
        return RegistryEvent(action=REGISTRATION, model=text(data.get("name"), "data.name"),
                             version=text(data.get("version"), "data.version"), **common)
    if event_type == "model_version_alias.created":
        return RegistryEvent(action=PROMOTION, model=text(data.get("name"), "data.name"),
                             version=text(data.get("version"), "data.version"),
                             alias=text(data.get("alias"), "data.alias"), **common)
    if event_type == "model_version_tag.set":
        return RegistryEvent(action=TAG_SET, model=text(data.get("name"), "data.name"),
                             version=text(data.get("version"), "data.version"),
                             tag_keys=(text(data.get("key"), "data.key"),), **common)
    if not entity.replace("_", "").isalnum() or not action.replace("_", "").isalnum():
        raise BadInput(f"unknown MLflow webhook event '{event_type[:80]}'")
    return ignored(SOURCE, event_type, f"{event_type} needs no check", delivery_id)
