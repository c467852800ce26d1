"""The Evidence Gate function app (Azure Functions, Python v2 programming model).

Follow an event: a delivery arrives at one of the functions below (``handlers/<source>.py``), whose
handler verifies and parses it into a ``RegistryEvent`` and hands it, with the app's
:class:`~shared.services.Services`, to :func:`shared.pipeline.process`, which runs the engine's
check (:mod:`shared.engine`) and delivers the report (state store, Service Bus).

The services are built once per process, from the settings, on the first event
(``Services.from_settings``), so importing this module stays cheap: MLflow, the engine and Azure
Monitor load on first use. Tests and the local host build their own app around their own
services with :func:`build_app`.

Functions, triggers and routes are the contract of DESIGN.md. The HTTP routes are ANONYMOUS at
the Functions level on purpose: MLflow and Databricks cannot always add a function key, so each
webhook is authenticated by its mandatory signature (MLflow, Databricks registry) or Basic
credentials (Databricks jobs) instead; an unset secret refuses every delivery.
"""

from collections.abc import Callable

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
from shared.services import Once, Services
from shared.state import log_configuration


def build_app(services: Callable[[], Services]) -> func.FunctionApp:
    """The function app, every function checking with ``services()``."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for source in (azureml_events, mlflow_webhook, databricks_registry_webhook, databricks_jobs_webhook, reconcile,
                   intake_queue):
        app.register_functions(source.blueprint(services))
    app.register_functions(notify_teams.bp)  # posts the cards of Service Bus messages: needs no services
    return app


services = Once(Services.from_settings)
app = build_app(services)

log_configuration()  # in Azure without a shared state store: say so now, checks are refused (503)

_functions: list[func.Function] | None = None


def functions() -> list[func.Function]:
    """``app.get_functions()``, built once: azure-functions 1.26 refuses a second call on the same
    app (it sees every name again as a duplicate). The local host and the tests use this."""
    global _functions
    if _functions is None:
        _functions = app.get_functions()
    return _functions
