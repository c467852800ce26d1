"""The report (contract: ``evidence-gate/report/v1``, JSON Schema in ``report.schema.json``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from importlib import resources

SCHEMA = "evidence-gate/report/v1"
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
SOURCES = ("azureml", "databricks-registry", "databricks-jobs", "mlflow", "reconcile", "cli")


@dataclass(frozen=True)
class Trigger:
    source: str
    event_type: str
    event_id: str | None = None
    event_time: str | None = None


@dataclass(frozen=True)
class Subject:
    kind: str  # model_version | run
    registry: str
    model: str | None = None
    version: str | None = None
    run_id: str | None = None
    alias: str | None = None
    stage: str | None = None


def verdict_of(findings: list[dict]) -> str:
    active = [f for f in findings if not f["waived"]]
    if any(f["severity"] == "error" for f in active):
        return "fail"
    if any(f["severity"] == "warning" for f in active):
        return "warn"
    return "pass"


def counts_of(findings: list[dict]) -> dict:
    active = [f for f in findings if not f["waived"]]
    counts = {s: sum(f["severity"] == s for f in active) for s in SEVERITY_ORDER}
    counts["waived"] = len(findings) - len(active)
    return counts


def report_id(subject: Subject, trigger: Trigger, policy_digest: str, evidence_digest: str, findings: list[dict]) -> str:
    """Stable for the same subject, trigger (source, event type, event id), policy and evidence (and hence
    the same outcome): a redelivered event gets its report id again; a different event gets its own."""
    outcome = sorted((f["rule_id"], f["severity"], f["waived"], f["message"]) for f in findings)
    payload = [asdict(subject), [trigger.source, trigger.event_type, trigger.event_id], policy_digest, evidence_digest, outcome]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def build_report(
    *,
    check: str,
    trigger: Trigger,
    subject: Subject,
    policy_name: str,
    policy_digest: str,
    scopes: list[str],
    findings: list[dict],
    expired_waivers: list[dict],
    evidence_digest: str,
    registry_requests: int,
    links: dict,
    now: datetime,
    deployment_job: dict | None = None,
) -> dict:
    """``deployment_job``: the Unity Catalog version's MLflow 3 deployment job (job_id, run_id,
    job_state, run_state, current_task), reported only when the version has one."""
    findings = sorted(findings, key=lambda f: (f["waived"], SEVERITY_ORDER[f["severity"]], f["rule_id"]))
    report = {
        "schema": SCHEMA,
        "report_id": report_id(subject, trigger, policy_digest, evidence_digest, findings),
        "verdict": verdict_of(findings),
        "check": check,
        "trigger": asdict(trigger),
        "subject": asdict(subject),
        "policy": {"name": policy_name, "digest": policy_digest, "scopes": scopes},
        "findings": findings,
        "expired_waivers": expired_waivers,
        "counts": counts_of(findings),
        "links": links,
        "evidence_digest": evidence_digest,
        "registry_requests": registry_requests,
        "notes": [],
        "generated_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if deployment_job is not None:
        report["deployment_job"] = deployment_job
    return report


@cache
def schema() -> dict:
    return json.loads(resources.files("shared").joinpath("report.schema.json").read_text(encoding="utf-8"))


def validate(report: dict) -> None:
    """Raise jsonschema.ValidationError when ``report`` breaks the contract."""
    import jsonschema

    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(report)
