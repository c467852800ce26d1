"""The app's services, wired once: the one object the handlers, the pipeline, reconcile and the CLI
are given, instead of each looking up module-level caches.

- ``engine``: the policy, the state store (``engine.store``), the registry-client factory
  (``engine.client_factory``) and the clock (``engine.clock``);
- ``publisher``: the Service Bus topic publisher, or None (reports go to the state store only);
- ``intake``: the durable intake queue (:mod:`shared.intake`) when ``EVIDENCE_GATE_INTAKE`` is
  configured, else None (deliveries are checked synchronously);
- which registry each event source's events are checked against: MLflow webhooks
  ``mlflow_registry`` (``MLFLOW_TRACKING_URI``), Databricks registry webhooks and job notifications
  ``databricks_registry`` / ``databricks_jobs_registry`` (the ``databricks`` tracking URI), Azure ML
  events the workspace's tracking URI from ``azureml_tracking_uri`` (workspace resource id -> URI).

:meth:`Services.from_settings` builds it from the settings (:mod:`shared.settings`);
``function_app.py`` does that once per process, on the first event (:class:`Once`). Tests and the
local host build one directly: ``Services(engine=Engine(policy, store), publisher=...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from shared import settings
from shared.errors import ConfigurationError
from shared.sources import RegistryEvent, databricks_jobs, databricks_registry, mlflow
from shared.sources.azureml import WorkspaceTrackingUris

if TYPE_CHECKING:  # the engine imports the registry backends: not at ``import function_app``
    from shared.engine import Engine
    from shared.evidence.registry import RegistryClient
    from shared.intake.queue import IntakeQueue
    from shared.sinks.servicebus import ServiceBusPublisher
    from shared.state import StateStore

DATABRICKS = "databricks"  # the Databricks workspace's tracking URI (databricks-sdk authentication)


@dataclass(frozen=True)
class Services:
    engine: Engine
    publisher: ServiceBusPublisher | None = None
    mlflow_registry: str | None = None
    databricks_registry: str = DATABRICKS
    databricks_jobs_registry: str = DATABRICKS
    azureml_tracking_uri: Callable[[str], str] = field(default_factory=WorkspaceTrackingUris)
    intake: IntakeQueue | None = None

    @classmethod
    def from_settings(cls) -> Services:
        """The services the settings describe: the policy of ``EVIDENCE_GATE_POLICY`` /
        ``EVIDENCE_GATE_WAIVERS``, the state store of :func:`shared.state.open_state` (which refuses
        in an Azure Functions host without a shared store: ConfigurationError), the Service Bus
        publisher when its namespace is set, the intake queue when its connection is set, Azure
        Monitor when configured."""
        from shared import intake, telemetry
        from shared.engine import Engine
        from shared.policy import load_policy
        from shared.sinks import servicebus
        from shared.state import open_state

        telemetry.configure()
        policy = load_policy(settings.get("EVIDENCE_GATE_POLICY"), settings.get("EVIDENCE_GATE_WAIVERS"))
        return cls(engine=Engine(policy, open_state()), publisher=servicebus.from_settings(),
                   mlflow_registry=settings.get("MLFLOW_TRACKING_URI"),
                   azureml_tracking_uri=WorkspaceTrackingUris(settings.get("EVIDENCE_GATE_AZUREML_REGION")),
                   intake=_intake_queue() if intake.configured() else None)

    @property
    def store(self) -> StateStore | None:
        return self.engine.store

    @property
    def client_factory(self) -> Callable[[str], RegistryClient]:
        return self.engine.client_factory

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.engine.clock

    def registry_uri(self, uri: str) -> str:
        """The registry ``uri`` names, as its history is kept: an Azure ML workspace resource id
        (``/subscriptions/...``) becomes the workspace's tracking URI, the identity its Event Grid
        events are checked and stored under; any other URI is itself."""
        if uri.strip().lower().startswith("/subscriptions/"):
            return self.azureml_tracking_uri(uri.strip())
        return uri

    def registry_for(self, event: RegistryEvent) -> str:
        """The registry an event is checked against: its own (reconcile names it), else its source's."""
        if event.registry:
            return event.registry
        if event.workspace:
            return self.azureml_tracking_uri(event.workspace)
        by_source = {mlflow.SOURCE: self.mlflow_registry, databricks_registry.SOURCE: self.databricks_registry,
                     databricks_jobs.SOURCE: self.databricks_jobs_registry}
        registry = by_source.get(event.source)
        if not registry:
            raise ConfigurationError(f"no registry for {event.source} events: set MLFLOW_TRACKING_URI")
        return registry


class Once:
    """``Services`` built on first use and then kept: the function app's process-wide services.

    A build that fails (a malformed policy, no shared state store in Azure) raises to the caller,
    which answers from the error (4xx/503), and is tried again by the next event."""

    def __init__(self, build: Callable[[], Services]):
        self._build = build
        self._built: Services | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Services:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built


def _intake_queue() -> IntakeQueue | None:
    from shared.intake.queue import IntakeQueue  # azure-storage-queue: only with the intake configured

    return IntakeQueue.from_settings()
