"""Azure Machine Learning events through Event Grid (``azureml_events``).

Both delivery schemas arrive here: the Event Grid schema (``func.EventGridEvent``: ``topic``,
``eventType``) and CloudEvents 1.0 (``func.CloudEvent``: ``source``, ``type``). Data keys are
read case-insensitively (the docs show PascalCase, real deliveries camelCase); versions may be
numbers or strings; ``models/{name}:{version}`` subjects are split on the LAST ``:``.

The parser names the workspace (the topic/source), not the registry: the wiring
(:class:`shared.services.Services`) resolves the workspace to its MLflow tracking URI with a
:class:`WorkspaceTrackingUris` (its ``mlFlowTrackingUri`` as the workspace reports it).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.errors import BadInput, ConfigurationError
from shared.jobs import JobRun
from shared.sources import DEPLOYED, JOB_FAILED, REGISTRATION, RUN, RegistryEvent, ignored
from shared.sources._parse import lower_keys, obj, text

log = logging.getLogger("evidence_gate.azureml")

SOURCE = "azureml"
PREFIX = "Microsoft.MachineLearningServices."
WORKSPACE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)$", re.IGNORECASE)
_RUN_SUBJECT = re.compile(r"^experiments/[^/]+/runs/(?P<run>[^/]+)$")

class WorkspaceTrackingUris:
    """The MLflow tracking URI of an Azure ML workspace (a callable: workspace resource id -> URI):
    its ``mlFlowTrackingUri``, asked of the workspace once and kept (private-link and
    sovereign-cloud workspaces have their own host).

    Only when the workspace cannot be asked (no Azure credential, or the identity may not read
    the workspace) and a ``region`` is given (``EVIDENCE_GATE_AZUREML_REGION``), the public-cloud
    URI is derived: ``azureml://{region}.api.azureml.ms/mlflow/v1.0{resource_id}`` (not kept: the
    workspace is asked again next time).
    """

    def __init__(self, region: str | None = None, ask: Callable[[str], str] | None = None):
        """``ask``: how a workspace is asked for its tracking URI (default :func:`ask_workspace`)."""
        self.region = region.strip().lower().replace(" ", "") if region and region.strip() else None
        self._ask = ask or ask_workspace
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, workspace_resource_id: str) -> str:
        if not WORKSPACE.match(workspace_resource_id or ""):
            raise BadInput(f"'{str(workspace_resource_id)[:200]}' is not an Azure ML workspace resource id")
        with self._lock:
            known = self._known.get(workspace_resource_id)
        if known is not None:
            return known
        try:
            uri = self._ask(workspace_resource_id)
        except ConfigurationError as exc:
            if not self.region:
                raise
            log.warning("workspace %s not asked for its tracking URI (%s); derived from EVIDENCE_GATE_AZUREML_REGION",
                        workspace_resource_id, exc)
            return f"azureml://{self.region}.api.azureml.ms/mlflow/v1.0{workspace_resource_id}"
        with self._lock:
            self._known[workspace_resource_id] = uri
        return uri


def ask_workspace(workspace_resource_id: str) -> str:
    """The workspace's ``mlFlowTrackingUri``, read with azure-ai-ml (ConfigurationError when the
    workspace cannot be asked: no Azure credential, or the identity may not read it)."""
    from shared.evidence.azureml import AzureMLBackend

    return AzureMLBackend(workspace_resource_id, workspace_resource_id).tracking_uri()


def parse_function_event(event: Any) -> RegistryEvent:
    """A ``func.EventGridEvent`` or ``func.CloudEvent`` (what the Functions runtime hands over)."""
    if hasattr(event, "specversion"):  # func.CloudEvent
        envelope = {"id": event.id, "source": event.source, "type": event.type, "subject": event.subject,
                    "time": event.time, "data": event.get_json(), "specversion": event.specversion or "1.0"}
    else:
        envelope = {"id": event.id, "topic": event.topic, "eventType": event.event_type, "subject": event.subject,
                    "eventTime": event.event_time, "data": event.get_json()}
    return parse_envelope(envelope)


def parse_envelope(envelope: Any) -> RegistryEvent:
    """One event in either schema as a plain dict."""
    envelope = obj(envelope, "event")
    cloud = "specversion" in envelope
    event_id = text(envelope.get("id"), "id")
    topic = text(envelope.get("source" if cloud else "topic"), "source" if cloud else "topic")
    event_type = text(envelope.get("type" if cloud else "eventType"), "type" if cloud else "eventType")
    subject = text(envelope.get("subject"), "subject", required=False) or ""
    when = envelope.get("time" if cloud else "eventTime")
    event_time = when.isoformat() if isinstance(when, datetime) else text(when, "eventTime", required=False)
    data = envelope.get("data")
    data = lower_keys(obj(data if data is not None else {}, "data"))
    short = event_type[len(PREFIX):] if event_type.startswith(PREFIX) else event_type
    common = {"source": SOURCE, "event_type": short, "event_id": event_id, "event_time": event_time}

    if short not in ("ModelRegistered", "RunCompleted", "RunStatusChanged", "ModelDeployed"):
        return ignored(SOURCE, short, f"{short[:80]} needs no check", event_id)
    if not WORKSPACE.match(topic):
        raise BadInput(f"topic '{topic[:200]}' is not an Azure ML workspace resource id")
    common["workspace"] = topic

    if short == "ModelRegistered":
        name, version = _model_from_subject(subject)
        name = text(data.get("modelname"), "data.ModelName", required=False) or name
        version = text(data.get("modelversion"), "data.ModelVersion", required=False) or version
        if not name or not version:
            raise BadInput("ModelRegistered event without a model name and version (data or subject models/{name}:{version})")
        return RegistryEvent(action=REGISTRATION, model=name, version=version, **common)

    if short in ("RunCompleted", "RunStatusChanged"):
        run_match = _RUN_SUBJECT.match(subject)
        run_id = text(data.get("runid"), "data.runId", required=False) or (run_match["run"] if run_match else None)
        if not run_id:
            raise BadInput(f"{short} event without a run id (data.runId or subject experiments/{{id}}/runs/{{runId}})")
        if short == "RunCompleted":
            return RegistryEvent(action=RUN, run_ids=(run_id,), **common)
        status = text(data.get("runstatus"), "data.runStatus", required=False) or "failed"
        if status.lower() != "failed":
            return ignored(SOURCE, short, f"run status '{status[:40]}' needs no check", event_id)
        job = JobRun(platform="azureml", run_id=run_id, status="failed",
                     job_name=text(data.get("experimentname"), "data.experimentName", required=False),
                     job_id=text(data.get("experimentid"), "data.experimentId", required=False))
        return RegistryEvent(action=JOB_FAILED, job=job, **common)

    # ModelDeployed
    ids = data.get("modelids")
    if isinstance(ids, str):
        items = [i for i in (part.strip() for part in ids.split(",")) if i]
    elif isinstance(ids, list):
        items = [text(i, "data.ModelIds[]") for i in ids]
    else:
        raise BadInput("ModelDeployed event without data.ModelIds")
    deployed = []
    for item in items:
        name, sep, version = item.rpartition(":")
        if not sep or not name or not version:
            raise BadInput(f"model id '{item[:120]}' is not name:version")
        deployed.append((text(name, "model name"), text(version, "model version")))
    if not deployed:
        raise BadInput("ModelDeployed event with an empty data.ModelIds")
    service = text(data.get("servicename"), "data.ServiceName", required=False) or subject.rpartition("/")[2] or None
    return RegistryEvent(action=DEPLOYED, deployed=tuple(deployed), service=service, **common)


def _model_from_subject(subject: str) -> tuple[str | None, str | None]:
    if not subject.startswith("models/"):
        return None, None
    name, sep, version = subject[len("models/"):].rpartition(":")
    return (name or None, version or None) if sep else (None, None)
