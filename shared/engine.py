"""The engine: collect evidence, evaluate the policy's rules, apply waivers, build the report.

Every source (functions, reconcile, CLI) comes here with a registry, a subject and a trigger.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from shared.errors import VersionNotReady
from shared.evidence.collect import collect_run, collect_version
from shared.evidence.model import Evidence, Unreadable, VersionEvidence
from shared.evidence.registry import RegistryClient, display_uri
from shared.jobs import JobRun
from shared.links import ui_links
from shared.policy import EffectivePolicy, Policy
from shared.policy.waivers import apply_waivers
from shared.report import Subject, Trigger, build_report
from shared.rules import catalog
from shared.rules.base import CheckContext, Deployment
from shared.state import StateStore


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Engine:
    policy: Policy
    store: StateStore | None = None
    client_factory: Callable[[str], RegistryClient] = RegistryClient
    clock: Callable[[], datetime] = field(default=_utcnow)

    # -- checks ------------------------------------------------------------------------------
    def check_version(self, registry: str, model: str, version: str | int, *, trigger: Trigger,
                      alias: str | None = None, stage: str | None = None,
                      version_evidence: VersionEvidence | None = None) -> dict:
        """Registration check, or promotion check when the alias/stage is protected by the policy.

        ``version_evidence``: the version's record already fetched from this registry (reconcile
        reuses its listing); the version is then not fetched again."""
        version = str(version)
        effective = self.policy.for_model(model)
        promoting = effective.is_protected(alias, stage)
        client = self.client_factory(registry)
        evidence = collect_version(
            client, model, version,
            alias=alias if promoting else None,
            stage=stage if promoting and not alias else None,
            required_tags=effective.required_tags,
            history=self.store,
            version_evidence=version_evidence,
            max_artifact_dirs=effective.max_artifact_dirs,
        )
        if not promoting:
            self._wait_for_running_run(client.uri, evidence, effective.running_run_wait_minutes)
        subject = Subject("model_version", client.uri, model, version,
                          evidence.run.run_id if evidence.run else None, alias, stage)
        check = "promotion" if promoting else "registration"
        return self._evaluate(CheckContext(check, evidence, effective, self.clock()), subject, trigger)

    def check_run(self, registry: str, run_id: str, *, trigger: Trigger) -> dict:
        """Run-level rules for a completed training run (job completions)."""
        client = self.client_factory(registry)
        effective = self.policy.for_model("")
        evidence = collect_run(client, run_id, max_artifact_dirs=effective.max_artifact_dirs)
        subject = Subject("run", client.uri, run_id=run_id)
        return self._evaluate(CheckContext("run", evidence, effective, self.clock()), subject, trigger)

    def job_failed(self, registry: str, job: JobRun, *, trigger: Trigger) -> dict:
        """JOB-001: the platform told us a training job failed; nothing to fetch."""
        evidence = Evidence(registry=display_uri(registry))
        subject = Subject("run", evidence.registry, run_id=job.run_id)
        ctx = CheckContext("job_failure", evidence, self.policy.for_model(""), self.clock(), job=job)
        return self._evaluate(ctx, subject, trigger)

    def unverifiable(self, registry: str, model: str, version: str | int, *, reason: str, hours: float,
                     trigger: Trigger, alias: str | None = None, stage: str | None = None,
                     retried: bool = True) -> dict:
        """EVD-008 for a version the gate could not check for longer than the policy allows
        (``unverifiable_after_hours``): the registry stayed unavailable. Nothing is fetched.
        ``retried=False``: the last such report, after ``give_up_after_days``: reconcile stops retrying."""
        version = str(version)
        shown = display_uri(registry)
        what = f"{model} version {version}" + (f" (promotion to {'alias ' + alias if alias else 'stage ' + str(stage)})"
                                                if alias or stage else "")
        if retried:
            fix = ("check the registry's availability and Evidence Gate's access to it; the version is checked again"
                   " by the next sweeps")
        else:
            days = math.ceil(hours / 24) + 1  # back to before the version was first listed
            fix = ("check the registry's availability and Evidence Gate's access to it, then check the version again"
                   f" (`evidence-gate reconcile --model {model} --since {days}d`): the sweeps no longer retry it")
        evidence = Evidence(registry=shown, unreadable=[Unreadable(
            part="version", what=what, reason=f"the registry stayed unavailable for {hours:.0f} h ({reason})"
            + ("" if retried else "; no longer retried"), fix=fix)])
        subject = Subject("model_version", shown, model, version, None, alias, stage)
        ctx = CheckContext("unverifiable", evidence, self.policy.for_model(model), self.clock())
        return self._evaluate(ctx, subject, trigger)

    def deployed(self, registry: str, model: str, version: str | int, service: str, *, trigger: Trigger) -> dict:
        """DEP-001: a deployed version must have a passing report."""
        version = str(version)
        shown = display_uri(registry)
        passing = self.store is not None and self.store.has_passing_report(shown, model, version)
        evidence = Evidence(registry=shown)
        subject = Subject("model_version", shown, model, version)
        ctx = CheckContext("deployment", evidence, self.policy.for_model(model), self.clock(),
                           deployment=Deployment(service, model, version, passing))
        return self._evaluate(ctx, subject, trigger)

    # -- evaluation --------------------------------------------------------------------------
    def _wait_for_running_run(self, registry: str, evidence: Evidence, wait_minutes: int) -> None:
        """A version registered inside its still-running run (``log_model(registered_model_name=...)``)
        is checked once the run has ended: until ``wait_minutes`` after the registration it is not
        ready (transient: redelivered, or retried by the next reconcile sweep); after that LIN-002
        reports the run as not finished."""
        run, mv = evidence.run, evidence.version
        if run is None or not run.found or run.status not in ("RUNNING", "SCHEDULED") or not wait_minutes:
            return
        registered = mv.creation_timestamp
        if registered is None or self.clock().timestamp() * 1000 - registered >= wait_minutes * 60_000:
            return
        raise VersionNotReady(registry, mv.name, mv.version, run_id=run.run_id, run_status=run.status,
                              wait_minutes=wait_minutes)

    def _evaluate(self, ctx: CheckContext, subject: Subject, trigger: Trigger) -> dict:
        findings = evaluate_rules(ctx)
        active, expired = self.policy.waivers_for(subject.model or "", subject.version, ctx.now.date())
        expired_report = apply_waivers(findings, active, expired)
        run, version = ctx.evidence.run, ctx.evidence.version
        deployment_job = version.deployment_job if version is not None else None
        return build_report(
            check=ctx.check,
            trigger=trigger,
            subject=subject,
            policy_name=ctx.policy.name,
            policy_digest=ctx.policy.digest,
            scopes=ctx.policy.scopes,
            findings=findings,
            expired_waivers=expired_report,
            evidence_digest=ctx.evidence.digest(),
            registry_requests=ctx.evidence.registry_requests,
            links=ui_links(subject.registry, subject.model, subject.version, subject.run_id,
                           run.experiment_id if run else None),
            now=ctx.now,
            deployment_job=asdict(deployment_job) if deployment_job is not None else None,
        )


def severity_for(rule, settings, check: str) -> str:
    """Promotion: policy promotion_severity, rule promotion default, policy severity, rule default."""
    if check == "promotion":
        return settings.promotion_severity or rule.promotion_severity or settings.severity or rule.severity
    return settings.severity or rule.severity


def evaluate_rules(ctx: CheckContext) -> list[dict]:
    policy: EffectivePolicy = ctx.policy
    findings = []
    for rule in catalog().values():
        if ctx.check not in rule.checks:
            continue
        settings = policy.rule(rule.id)
        if not settings.enabled:
            continue
        params = {**rule.params, **settings.params}
        for hit in rule.evaluate(ctx, params):
            findings.append({
                "rule_id": rule.id,
                "severity": severity_for(rule, settings, ctx.check),
                "title": rule.title,
                "message": hit.message,
                "remediation": rule.remediation,
                "evidence": hit.evidence,
                "waived": False,
            })
    return findings
