"""The one place HTTP deliveries are answered (DESIGN.md "HTTP answers").

413 body over :data:`MAX_BODY_BYTES` · 401 signature/credentials · 400 malformed (JSON error
body) · 503 registry unavailable, version not ready, Service Bus send failed or a setting
missing (the sender retries) · 200 checked, skipped or ignored (with the reason). Never a 500
for bad input. Imports of the engine stay lazy: ``import function_app`` must be cheap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import azure.functions as func

from shared.errors import BadInput, PolicyError, RegistryUnavailable
from shared.sources import ConfigurationError, RegistryEvent, Unauthorized

MAX_BODY_BYTES = 1 << 20  # 1 MiB: registry webhooks are a few hundred bytes
RETRY_AFTER_SECONDS = 30

logger = logging.getLogger("evidence_gate.http")


def json_response(status: int, body: dict, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, sort_keys=True), status_code=status, mimetype="application/json",
                             headers=dict(headers or {}))


def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return json_response(status, {"error": code, "message": message}, headers)


def answer(req: func.HttpRequest, name: str, receive: Callable[[Mapping[str, str], bytes], RegistryEvent]) -> func.HttpResponse:
    """Verify and parse the delivery with ``receive(headers, body)``, run the pipeline, answer."""
    from shared.sinks.servicebus import PublishError

    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        logger.warning("%s: refused a %d byte body (limit %d)", name, len(body), MAX_BODY_BYTES)
        return error(413, "too_large", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        event = receive(req.headers, body)
    except Unauthorized as exc:
        logger.warning("%s: delivery refused: %s", name, exc)
        return error(401, "unauthorized", str(exc))
    except BadInput as exc:
        logger.warning("%s: malformed delivery: %s", name, exc)
        return error(400, "bad_input", str(exc))

    from shared import pipeline

    try:
        outcome = pipeline.process(event)
    except BadInput as exc:  # e.g. a registry that refuses the model name
        logger.warning("%s: %s: %s", name, event.describe(), exc)
        return error(400, "bad_input", str(exc))
    except RegistryUnavailable as exc:
        logger.warning("%s: %s: %s (sender will retry)", name, event.describe(), exc)
        retry = str(int(exc.retry_after)) if exc.retry_after else str(RETRY_AFTER_SECONDS)
        return error(503, "registry_unavailable", str(exc), {"Retry-After": retry})
    except PublishError as exc:
        logger.error("%s: %s: %s", name, event.describe(), exc)
        return error(503, "sink_unavailable", str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)})
    except (ConfigurationError, PolicyError) as exc:
        logger.error("%s: not configured: %s", name, exc)
        return error(503, "not_configured", str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)})
    logger.info("%s: %s: %s", name, event.describe(), outcome.status,
                extra={"event_id": event.event_id, "reports": len(outcome.reports), "duplicates": outcome.duplicates})
    return json_response(200, {"event_id": event.event_id, "event_type": event.event_type, **outcome.body()})
