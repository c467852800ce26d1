"""`mlflow_webhook`: open-source MLflow 3 webhooks (``POST /api/webhooks/mlflow``).

``X-MLflow-Signature`` (v1, HMAC-SHA256 over ``delivery_id.timestamp.body``) is verified with
``MLFLOW_WEBHOOK_SECRET``; timestamps more than 5 minutes away are refused. The delivery id is
the event id. ``model_version.created`` -> registration check; ``model_version_alias.created``
for a protected alias -> promotion check; ``model_version_tag.set`` on the approval key ->
re-check of the promotion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from handlers._http import answer
from shared.sources import mlflow

if TYPE_CHECKING:
    from shared.services import Services


def _receive(headers, body: bytes):
    delivery_id = mlflow.verify(headers, body)
    return mlflow.parse(body, delivery_id)


def blueprint(services: Callable[[], Services]) -> func.Blueprint:
    """The ``mlflow_webhook`` function, checking with ``services()``."""
    bp = func.Blueprint()

    @bp.function_name("mlflow_webhook")
    @bp.route(route="webhooks/mlflow", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    def mlflow_webhook(req: func.HttpRequest) -> func.HttpResponse:
        return answer(req, "mlflow_webhook", _receive, services)

    return bp
