"""`databricks_jobs_webhook`: Databricks job notifications, generic webhook destination
(``POST /api/webhooks/databricks/jobs``).

HTTP Basic credentials (``DATABRICKS_JOBS_WEBHOOK_USERNAME``/``..._PASSWORD``). ``jobs.on_success``
-> run-level rules on the MLflow runs tagged with the job run id; ``jobs.on_failure`` -> JOB-001;
other event types -> 200 ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from handlers._http import answer
from shared.sources import databricks_jobs

if TYPE_CHECKING:
    from shared.services import Services


def _receive(headers, body: bytes):
    databricks_jobs.verify(headers)
    return databricks_jobs.parse(body)


def blueprint(services: Callable[[], Services]) -> func.Blueprint:
    """The ``databricks_jobs_webhook`` function, checking with ``services()``."""
    bp = func.Blueprint()

    @bp.function_name("databricks_jobs_webhook")
    @bp.route(route="webhooks/databricks/jobs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    def databricks_jobs_webhook(req: func.HttpRequest) -> func.HttpResponse:
        return answer(req, "databricks_jobs_webhook", _receive, services)

    return bp
