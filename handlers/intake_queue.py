"""`intake`: the queue-triggered check of a delivery accepted by a webhook or Event Grid
(queue ``%EVIDENCE_GATE_INTAKE_QUEUE%`` on the connection ``EVIDENCE_GATE_INTAKE``).

Runs the check and acts on :func:`shared.intake.decide.decide`: done; not ready or transient ->
a new message with a visibility delay; given up or bad input -> the poison queue with the reason
(:mod:`shared.intake.worker`). Copies of one event are checked one at a time (a lease in the
state store). Known errors return normally, so the host does not retry on top; an unexpected
exception raises and the host's own ``maxDequeueCount`` (host.json) applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared.settings import INTAKE_CONNECTION

if TYPE_CHECKING:
    from shared.services import Services


def blueprint(services: Callable[[], Services]) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("intake")
    @bp.queue_trigger(arg_name="message", queue_name="%EVIDENCE_GATE_INTAKE_QUEUE%", connection=INTAKE_CONNECTION)
    def intake(message: func.QueueMessage) -> None:
        handle(message, services())

    return bp


def handle(message: func.QueueMessage, services: Services) -> None:
    from shared import intake, pipeline
    from shared.errors import ConfigurationError
    from shared.intake.worker import handle as check

    if services.intake is None:  # the host only triggers this function with the connection set
        raise ConfigurationError(f"{INTAKE_CONNECTION} is not configured")
    check(message.get_body(), queue=services.intake, check=lambda event: pipeline.process(event, services),
          leases=lambda: services.store, policy=intake.retry_policy())
