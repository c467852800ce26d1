"""The one place HTTP deliveries are answered (DESIGN.md "HTTP answers").

413 body over :data:`MAX_BODY_BYTES`; any other refusal is the error's own HTTP status and code
(:mod:`shared.errors`): 401 signature/credentials, 400 malformed (JSON error body), 503 with
``Retry-After`` for everything the sender should retry (registry unavailable, version not ready,
Service Bus or state store down, a setting missing); 200 checked, skipped or ignored (with the
reason). Never a 500 for bad input. With the intake queue configured (``EVIDENCE_GATE_INTAKE``,
:mod:`shared.intake`) a verified delivery is queued and answered 202 ``accepted`` instead of
being checked in the request; a failure to queue it is 503 with ``Retry-After``. Imports of the
engine stay lazy: ``import function_app`` must be cheap.

Each HTTP handler module exposes ``blueprint(services)``: ``services()`` gives the app's
:class:`~shared.services.Services` (built on the first delivery by ``function_app.py``, or made by
a test); a failure to build them (no shared state store in Azure, a malformed policy) is answered
like any other error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import azure.functions as func

from shared.errors import EvidenceGateError
from shared.sources import RegistryEvent

if TYPE_CHECKING:
    from shared.services import Services

MAX_BODY_BYTES = 1 << 20  # 1 MiB: registry webhooks are a few hundred bytes
RETRY_AFTER_SECONDS = 30

logger = logging.getLogger("evidence_gate.http")


def json_response(status: int, body: dict, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, sort_keys=True), status_code=status, mimetype="application/json",
                             headers=dict(headers or {}))


def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return json_response(status, {"error": code, "message": message}, headers)


def answer(req: func.HttpRequest, name: str, receive: Callable[[Mapping[str, str], bytes], RegistryEvent],
           services: Callable[[], Services]) -> func.HttpResponse:
    """Verify and parse the delivery with ``receive(headers, body)``, run the pipeline with
    ``services()``, answer.

    Every refusal comes from the error's own attributes (:mod:`shared.errors`): its HTTP status,
    its ``code`` and, when the sender should retry, a ``Retry-After``."""
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        logger.warning("%s: refused a %d byte body (limit %d)", name, len(body), MAX_BODY_BYTES)
        return error(413, "too_large", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        event = receive(req.headers, body)
    except EvidenceGateError as exc:
        return refusal(name, "delivery", exc)

    from shared import intake, pipeline

    try:
        svc = services()
        if intake.offer(event, svc.intake):  # durable intake: queued, answered 202 (docs/deploy.md "Durable intake")
            logger.info("%s: %s: accepted", name, event.describe(), extra={"event_id": event.event_id})
            return json_response(202, {"event_id": event.event_id, "event_type": event.event_type, "status": "accepted"})
        outcome = pipeline.process(event, svc)
    except EvidenceGateError as exc:
        return refusal(name, event.describe(), exc)
    logger.info("%s: %s: %s", name, event.describe(), outcome.status,
                extra={"event_id": event.event_id, "reports": len(outcome.reports), "duplicates": outcome.duplicates})
    return json_response(200, {"event_id": event.event_id, "event_type": event.event_type, **outcome.body()})


def refusal(name: str, what: str, exc: EvidenceGateError) -> func.HttpResponse:
    """The HTTP answer for an error: its status and code; ``Retry-After`` when the sender should
    retry (the error's own hint, else :data:`RETRY_AFTER_SECONDS`)."""
    headers = {}
    if exc.retry:
        headers["Retry-After"] = str(int(exc.retry_after)) if exc.retry_after else str(RETRY_AFTER_SECONDS)
    level = logging.WARNING if exc.transient or exc.http_status < 500 else logging.ERROR
    logger.log(level, "%s: %s: %s%s", name, what, exc, " (sender will retry)" if exc.retry else "")
    return error(exc.http_status, exc.code, str(exc), headers)
