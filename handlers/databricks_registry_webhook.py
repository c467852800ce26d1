"""`databricks_registry_webhook`: Databricks workspace Model Registry webhooks
(``POST /api/webhooks/databricks/registry``).

``X-Databricks-Signature`` (hex HMAC-SHA256 of the raw body) is verified with
``DATABRICKS_WEBHOOK_SECRET``; without a secret every delivery is refused. Version created ->
registration check; transitions and transition requests to a protected stage -> promotion
check; the approval tag set -> re-check of the promotion; anything else -> 200 ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from handlers._http import answer
from shared.sources import databricks_registry

if TYPE_CHECKING:
    from shared.services import Services


def _receive(headers, body: bytes):
    databricks_registry.verify(headers, body)
    return databricks_registry.parse(body)


def blueprint(services: Callable[[], Services]) -> func.Blueprint:
    """The ``databricks_registry_webhook`` function, checking with ``services()``."""
    bp = func.Blueprint()

    @bp.function_name("databricks_registry_webhook")
    @bp.route(route="webhooks/databricks/registry", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    def databricks_registry_webhook(req: func.HttpRequest) -> func.HttpResponse:
        return answer(req, "databricks_registry_webhook", _receive, services)

    return bp
