"""The Evidence Gate function app (Azure Functions, Python v2 programming model).

Functions, triggers and routes are the contract of DESIGN.md. The HTTP routes are ANONYMOUS at
the Functions level on purpose: MLflow and Databricks cannot always add a function key, so each
webhook is authenticated by its mandatory signature (MLflow, Databricks registry) or Basic
credentials (Databricks jobs) instead; an unset secret refuses every delivery.

Importing this module stays cheap: MLflow, the engine and Azure Monitor load on first use.
"""

import azure.functions as func

from handlers import (
    azureml_events,
    databricks_jobs_webhook,
    databricks_registry_webhook,
    intake_queue,
    mlflow_webhook,
    notify_teams,
    reconcile,
)
from shared.state import log_configuration

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for _blueprint in (
    azureml_events.bp,
    mlflow_webhook.bp,
    databricks_registry_webhook.bp,
    databricks_jobs_webhook.bp,
    reconcile.bp,
    notify_teams.bp,
    intake_queue.bp,
):
    app.register_functions(_blueprint)

log_configuration()  # in Azure without a shared state store: say so now, checks are refused (503)

_functions: list[func.Function] | None = None


def functions() -> list[func.Function]:
    """``app.get_functions()``, built once: azure-functions 1.26 refuses a second call on the same
    app (it sees every name again as a duplicate). The local host and the tests use this."""
    global _functions
    if _functions is None:
        _functions = app.get_functions()
    return _functions
