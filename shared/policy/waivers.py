"""Waivers: a rule waived for matching model versions, with a reason, an approver and an expiry.

An expired waiver is ignored and reported as such. This module is the one place that decides
whether a waiver applies (:func:`apply_waivers`).
"""

from __future__ import annotations

import fnmatch
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    model: str = Field(default="*", description="registered-model name pattern (fnmatch)")
    version: str | None = None
    reason: str = Field(min_length=3)
    approver: str = Field(min_length=1)
    expires: date

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        from shared.rules import catalog

        if rule not in catalog():
            raise ValueError(f"unknown rule id '{rule}'")
        return rule

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value):
        return None if value is None else str(value)

    def matches(self, model: str, version: str | None) -> bool:
        return fnmatch.fnmatchcase(model, self.model) and (self.version is None or self.version == version)

    def expired(self, today: date) -> bool:
        return today > self.expires

    def describe(self) -> dict:
        return {
            "rule": self.rule,
            "model": self.model,
            "version": self.version,
            "approver": self.approver,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
        }


class _WaiversFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waivers: list[Waiver] = Field(default_factory=list)


def load_waivers(path: str, read_yaml) -> list[Waiver]:
    from shared.policy.loader import validation_error

    try:
        return _WaiversFile.model_validate(read_yaml(path, "waivers")).waivers
    except ValidationError as exc:
        raise validation_error(path, exc) from None


def apply_waivers(findings: list[dict], active: list[Waiver], expired: list[Waiver]) -> list[dict]:
    """Mark findings covered by an active waiver; return the expired waivers that would have applied."""
    by_rule = {w.rule: w for w in active}
    for finding in findings:
        waiver = by_rule.get(finding["rule_id"])
        if waiver is not None:
            finding["waived"] = True
            finding["waiver"] = waiver.describe()
    fired = {f["rule_id"] for f in findings}
    return [w.describe() | {"status": "expired, ignored"} for w in expired if w.rule in fired]
