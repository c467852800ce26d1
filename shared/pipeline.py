"""The one pipeline every source goes through: RegistryEvent -> engine check -> sinks + telemetry.

- Everything it uses comes from the :class:`~shared.services.Services` it is given: the engine
  (policy, state store, registry clients, clock), the Service Bus publisher, and which registry
  each source's events are checked against (:meth:`~shared.services.Services.registry_for`).
- Each check runs inside :func:`shared.telemetry.check_span` and is recorded with
  :func:`shared.telemetry.record_report`.
- Delivery: the Service Bus topic when the services have a publisher (the topic drops duplicates
  by ``message_id``), and always the state store, which is the embedded sink without Service Bus
  and the engine's memory with it (``save`` drops duplicate report ids). Service Bus is sent to first, so a failed publish is retried on redelivery.
- Errors (:mod:`shared.errors`) propagate; the caller answers from the error's attributes
  (HTTP status, ``retry``), so transient ones are redelivered.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared import telemetry
from shared.errors import NotFoundInRegistry, RegistryUnavailable, SubjectNotFound
from shared.sources import DEPLOYED, IGNORED, JOB_FAILED, PROMOTION, REGISTRATION, RUN, TAG_SET, RegistryEvent

if TYPE_CHECKING:
    from shared.evidence.model import VersionEvidence
    from shared.services import Services

log = logging.getLogger("evidence_gate.pipeline")


@dataclass
class Outcome:
    status: str  # checked | ignored | skipped
    reason: str | None = None
    reports: list[dict] = field(default_factory=list)  # summaries
    notes: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(1 for r in self.reports if r["stored"])

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.reports if not r["stored"])

    def body(self) -> dict:
        out = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.status == "checked":
            out.update(reports=self.reports, stored=self.stored, duplicates=self.duplicates)
        if self.notes:
            out["notes"] = self.notes
        return out


def process(event: RegistryEvent, services: Services, *, version_evidence: VersionEvidence | None = None) -> Outcome:
    """Run the check(s) an event calls for and deliver the report(s).

    ``version_evidence``: for a registration, the version's record already fetched from the
    registry (reconcile's listing); the version is then not fetched again."""
    if event.action == IGNORED:
        log.info("%s: ignored (%s)", event.describe(), event.reason)
        return Outcome("ignored", event.reason)
    engine = services.engine
    registry = services.registry_for(event)
    trigger = _trigger(event)
    notes: list[str] = []

    if event.action == REGISTRATION:
        checks = [(lambda: engine.check_version(registry, event.model, event.version, trigger=trigger,
                                                version_evidence=version_evidence), event.model, event.version, None)]
    elif event.action == PROMOTION:
        effective = engine.policy.for_model(event.model)
        if not effective.is_protected(event.alias, event.stage):
            target = f"alias '{event.alias}'" if event.alias else f"stage '{event.stage}'"
            protected = effective.protected_aliases if event.alias else effective.protected_stages
            reason = f"{target} is not protected by the policy (protected: {', '.join(protected) or 'none'})"
            log.info("%s: ignored (%s)", event.describe(), reason)
            return Outcome("ignored", reason)
        checks = [(lambda: engine.check_version(registry, event.model, event.version, alias=event.alias,
                                                stage=event.stage if not event.alias else None, trigger=trigger),
                   event.model, event.version, None)]
    elif event.action == TAG_SET:
        effective = engine.policy.for_model(event.model)
        if effective.approval_tag not in event.tag_keys:
            keys = ", ".join(event.tag_keys) or "none"
            reason = f"tag(s) {keys} set; only the approval tag '{effective.approval_tag}' triggers a re-check"
            log.info("%s: ignored (%s)", event.describe(), reason)
            return Outcome("ignored", reason)
        alias, stage, note = _current_target(engine, registry, event, effective)
        if note:
            notes.append(note)
        checks = [(lambda: engine.check_version(registry, event.model, event.version, alias=alias, stage=stage,
                                                trigger=trigger), event.model, event.version, None)]
    elif event.action == RUN:
        run_ids = list(event.run_ids)
        if event.job is not None:
            run_ids += _job_runs(engine, registry, event)
        if not run_ids:
            reason = f"no MLflow runs are tagged with job run {event.job.run_id if event.job else '?'}"
            log.info("%s: %s", event.describe(), reason)
            return Outcome("skipped", reason)
        checks = [((lambda r=r: engine.check_run(registry, r, trigger=trigger)), None, None, r) for r in run_ids]
    elif event.action == JOB_FAILED:
        job = event.job
        checks = [(lambda: engine.job_failed(registry, job, trigger=trigger), None, None, job.run_id)]
    elif event.action == DEPLOYED:
        checks = [((lambda m=m, v=v: engine.deployed(registry, m, v, event.service or "", trigger=trigger)), m, v, None)
                  for m, v in event.deployed]
    else:  # a parser bug, not the sender's
        raise ValueError(f"unknown action {event.action!r}")

    outcome = Outcome("checked", notes=notes)
    with _event_lock(event):  # concurrent duplicate deliveries in this process: one checks, the others reuse
        _run_checks(services, event, registry, checks, notes, outcome)
    if not outcome.reports and outcome.notes:
        outcome.status, outcome.reason = "skipped", outcome.notes[-1]
    return outcome


_EVENT_LOCKS = tuple(threading.Lock() for _ in range(64))


def _event_lock(event: RegistryEvent) -> threading.Lock:
    return _EVENT_LOCKS[hash((event.source, event.event_type, event.event_id)) % len(_EVENT_LOCKS)]


def _run_checks(services: Services, event: RegistryEvent, registry: str, checks, notes: list[str],
                outcome: Outcome) -> None:
    for run_check, model, version, run_id in checks:
        earlier = _earlier_report(services.engine, event, model, version, run_id)
        if earlier is not None:  # a redelivery: the event already has its report
            log.info("%s: already reported as %s (redelivery)", event.describe(), earlier["report_id"])
            outcome.reports.append(summary(earlier, False))
            continue
        try:
            report = _checked(event, registry, run_check, model, version, notes)
        except SubjectNotFound as exc:
            log.warning("%s: %s; nothing to check", event.describe(), exc)
            outcome.notes.append(str(exc))
            continue
        stored = deliver(report, event.event_id, services)
        outcome.reports.append(summary(report, stored))


def _earlier_report(engine, event: RegistryEvent, model, version, run_id) -> dict | None:
    """The report already made for this event and subject (same source, type and event id).

    At least once in, exactly one report out: a redelivered event is answered with the report of
    its first delivery, without asking the registry again. (Checking again would not reliably give
    the same report id: the first report is now part of the store's history.)"""
    if not event.event_id or engine.store is None:
        return None
    for report in engine.store.reports_for_event(event.source, event.event_type, event.event_id):
        subject = report.get("subject") or {}
        if model is not None and (subject.get("model"), subject.get("version")) != (model, str(version)):
            continue
        if run_id is not None and subject.get("run_id") != run_id:
            continue
        return report
    return None


def _trigger(event: RegistryEvent):
    from shared.report import Trigger

    return Trigger(event.source, event.event_type, event.event_id, event.event_time)


def _checked(event: RegistryEvent, registry: str, run_check, model, version, notes: list[str]) -> dict:
    start = telemetry.monotonic_ms()
    with telemetry.check_span(source=event.source, event_type=event.event_type, model=model, version=version,
                              registry=registry, event_id=event.event_id):
        try:
            report = run_check()
        except RegistryUnavailable as exc:
            telemetry.record_registry_error(registry, exc.telemetry_kind)
            raise
        if notes:
            report["notes"] = [*report.get("notes", []), *notes]
        telemetry.record_report(report, duration_ms=telemetry.monotonic_ms() - start)
    return report


def deliver(report: dict, event_id: str | None, services: Services) -> bool:
    """Send the report to Service Bus when there is a publisher, and keep it in the state store.
    Returns False when the store already had this report (a duplicate delivery)."""
    if services.publisher is not None:
        services.publisher.publish(report, event_id)  # PublishError propagates: the event is retried
    store = services.store
    stored = store.save(report) if store is not None else True
    if not stored:
        log.info("report %s already stored (duplicate delivery)", report["report_id"])
    elif store is not None:
        from shared.reconcile import remember_unreadable

        remember_unreadable(store, report)
    return stored


def summary(report: dict, stored: bool) -> dict:
    subject = report["subject"]
    return {"report_id": report["report_id"], "verdict": report["verdict"], "check": report.get("check"),
            "model": subject.get("model"), "version": subject.get("version"), "run_id": subject.get("run_id"),
            "alias": subject.get("alias"), "stage": subject.get("stage"), "stored": stored,
            "findings": sorted({f["rule_id"] for f in report["findings"] if not f["waived"]})}


def _current_target(engine, registry: str, event: RegistryEvent, effective) -> tuple[str | None, str | None, str | None]:
    """The protected alias or stage the version holds now (approval tag set: re-check that promotion)."""
    client = engine.client_factory(registry)
    try:
        mv = client.get_model_version(event.model, event.version)
    except NotFoundInRegistry:
        raise SubjectNotFound(f"model '{event.model}' version {event.version} does not exist in {client.uri}") from None
    for alias in sorted(mv.aliases):
        if effective.is_protected(alias, None):
            return alias, None, None
    if mv.stage and effective.is_protected(None, mv.stage):
        return None, mv.stage, None
    return None, None, (f"approval tag set on {event.model} v{event.version}, which holds no protected alias or stage:"
                        " registration check instead of a promotion check")


def _job_runs(engine, registry: str, event: RegistryEvent) -> list[str]:
    from shared.sources.databricks_jobs import JOB_RUN_TAG

    client = engine.client_factory(registry)
    found: list[str] = []
    job_runs = [event.job.run_id, event.job.parent_run_id]
    if event.job.run_id:  # a multi-task job's notification names the job run; MLflow tags the task runs
        job_runs += client.job_task_runs(event.job.run_id)
    for job_run in filter(None, job_runs):
        for run_id in client.search_runs_by_tag(JOB_RUN_TAG, job_run):
            if run_id not in found:
                found.append(run_id)
    return found
