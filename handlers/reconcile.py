"""`reconcile`: the timer sweep (schedule ``%EVIDENCE_GATE_RECONCILE_SCHEDULE%``, default every 15 min).

Lists the versions changed since the store's watermark in every registry of
``EVIDENCE_GATE_REGISTRIES`` and checks those without a report for the current policy, plus the
holders of protected aliases. Covers Unity Catalog (no webhooks) and lost deliveries. A registry
that is unavailable keeps its watermark; the next tick retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from shared.services import Services

logger = logging.getLogger("evidence_gate.reconcile")

def blueprint(services: Callable[[], Services]) -> func.Blueprint:
    """The ``reconcile`` timer function, sweeping with ``services()``."""
    bp = func.Blueprint()

    @bp.function_name("reconcile")
    @bp.timer_trigger(schedule="%EVIDENCE_GATE_RECONCILE_SCHEDULE%", arg_name="timer", run_on_startup=False)
    def reconcile(timer: func.TimerRequest) -> None:
        from shared.reconcile import reconcile_all

        if getattr(timer, "past_due", False):
            logger.info("reconcile: timer is past due; sweeping now")
        for summary in reconcile_all(services()):
            logger.info("reconcile: %s", summary.line(), extra=summary.log_fields())

    return bp
