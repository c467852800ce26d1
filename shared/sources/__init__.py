"""Source adapters: one module per platform that turns a delivery into a :class:`RegistryEvent`.

Each parser takes what the platform sent and either returns a ``RegistryEvent`` or raises
:class:`shared.errors.BadInput`; nothing else escapes (the parsers are fuzzed). Signature and
credential checks live in :mod:`shared.sources.signatures` and raise :class:`shared.errors.Unauthorized`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.jobs import JobRun

# What the pipeline does with an event.
REGISTRATION = "registration"  # check a new model version
PROMOTION = "promotion"  # check a version getting an alias or stage (ignored when not protected)
TAG_SET = "tag_set"  # re-check a promotion when the approval tag was set (ignored for other keys)
RUN = "run"  # run-level rules for completed runs (ids, or Databricks job run ids to search by tag)
JOB_FAILED = "job_failed"  # JOB-001
DEPLOYED = "deployed"  # DEP-001 for each (model, version)
IGNORED = "ignored"  # nothing to check; ``reason`` says why


@dataclass(frozen=True)
class RegistryEvent:
    """One normalised event, whatever platform sent it."""

    source: str  # report trigger source: azureml | databricks-registry | databricks-jobs | mlflow
    event_type: str
    action: str
    event_id: str | None = None
    event_time: str | None = None
    registry: str | None = None  # tracking URI when the event names one (reconcile); else the wiring picks
                                 # its source's registry (shared.services.Services.registry_for)
    workspace: str | None = None  # Azure ML workspace resource id
    model: str | None = None
    version: str | None = None
    alias: str | None = None
    stage: str | None = None
    tag_keys: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()  # MLflow run ids to check (RUN)
    job: JobRun | None = None  # Databricks job run (RUN: search its runs; JOB_FAILED), Azure ML run (JOB_FAILED)
    deployed: tuple[tuple[str, str], ...] = ()
    service: str | None = None
    reason: str | None = None  # IGNORED
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        subject = f"{self.model} v{self.version}" if self.model else (", ".join(self.run_ids) or (self.job.run_id if self.job else ""))
        return f"{self.source} {self.event_type} {subject}".strip()


def ignored(source: str, event_type: str, reason: str, event_id: str | None = None) -> RegistryEvent:
    return RegistryEvent(source=source, event_type=event_type, action=IGNORED, event_id=event_id, reason=reason)
