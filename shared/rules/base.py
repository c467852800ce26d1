"""What a rule is, and what it is given to evaluate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from shared.evidence.model import Evidence
from shared.jobs import JobRun
from shared.policy.model import EffectivePolicy

Severity = Literal["error", "warning", "info"]
Check = Literal["registration", "promotion", "run", "job_failure", "deployment", "unverifiable"]

MODEL_VERSION_CHECKS: frozenset[str] = frozenset({"registration", "promotion"})
RUN_LEVEL_CHECKS: frozenset[str] = frozenset({"registration", "promotion", "run"})
PROMOTION_ONLY: frozenset[str] = frozenset({"promotion"})




@dataclass(frozen=True)
class Deployment:
    """A model version deployed to a serving endpoint (Azure ML ModelDeployed)."""

    service: str
    model: str
    version: str
    passing_report: bool


@dataclass
class CheckContext:
    check: Check
    evidence: Evidence
    policy: EffectivePolicy
    now: datetime
    job: JobRun | None = None  # job_failure: the run that failed (Azure ML RunStatusChanged, Databricks jobs.on_failure)
    deployment: Deployment | None = None


@dataclass(frozen=True)
class Hit:
    """One occurrence of a rule firing."""

    message: str
    evidence: dict = field(default_factory=dict)


class Rule:
    """A catalog rule: one subclass per file in ``shared/rules``, named after its id."""

    id: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[Severity]
    promotion_severity: ClassVar[Severity | None] = None
    remediation: ClassVar[str]
    checks: ClassVar[frozenset[str]]
    params: ClassVar[dict[str, object]] = {}

    def evaluate(self, ctx: CheckContext, params: dict) -> Iterable[Hit]:
        raise NotImplementedError

    def default_severity(self, check: str) -> Severity:
        if check == "promotion" and self.promotion_severity:
            return self.promotion_severity
        return self.severity
