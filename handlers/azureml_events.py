"""`azureml_events`: Azure Machine Learning events through an Event Grid trigger.

Both schemas: ``func.EventGridEvent`` (Event Grid) and ``func.CloudEvent`` (CloudEvents 1.0).
ModelRegistered -> registration check; RunCompleted -> run check; RunStatusChanged (failed) ->
JOB-001; ModelDeployed -> DEP-001 for every ``name:version`` in ``ModelIds``.

An error the sender should retry (``retry`` in :mod:`shared.errors`: registry unavailable,
version not ready, Service Bus or state store down, a missing setting) raises, so Event Grid
redelivers; any other (poison input, a refused name) is logged and the function returns normally,
so the event is completed and not redelivered. With the intake queue configured
(:mod:`shared.intake`) the parsed event is queued instead of checked here; a failure to queue it
raises, so Event Grid redelivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared.errors import BadInput, EvidenceGateError
from shared.sources import azureml

if TYPE_CHECKING:
    from shared.services import Services

logger = logging.getLogger("evidence_gate.azureml_events")

def blueprint(services: Callable[[], Services]) -> func.Blueprint:
    """The ``azureml_events`` function, checking with ``services()``."""
    bp = func.Blueprint()

    @bp.function_name("azureml_events")
    @bp.event_grid_trigger(arg_name="event")
    def azureml_events(event: func.EventGridEvent) -> None:
        handle(event, services)

    return bp


def handle(event: func.EventGridEvent, services: Callable[[], Services]) -> None:
    event_id = getattr(event, "id", None)
    try:
        parsed = azureml.parse_function_event(event)
    except BadInput as exc:
        logger.error("azureml_events: poison event %s dropped: %s", event_id, exc, extra={"event_id": event_id})
        return
    from shared import intake, pipeline

    try:
        svc = services()
        if intake.offer(parsed, svc.intake):  # durable intake (docs/deploy.md "Durable intake")
            logger.info("azureml_events: %s: accepted", parsed.describe(), extra={"event_id": event_id})
            return
        outcome = pipeline.process(parsed, svc)
    except EvidenceGateError as exc:
        if exc.retry:
            logger.warning("azureml_events: %s: %s (Event Grid will redeliver)", parsed.describe(), exc,
                           extra={"event_id": event_id})
            raise
        logger.error("azureml_events: %s dropped: %s", parsed.describe(), exc, extra={"event_id": event_id})
        return
    logger.info("azureml_events: %s: %s", parsed.describe(), outcome.status,
                extra={"event_id": event_id, "reports": len(outcome.reports), "reason": outcome.reason})
