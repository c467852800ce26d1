"""The policy file's shape (validated with pydantic) and the effective policy for one model."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["error", "warning", "info"]
Direction = Literal["higher", "lower"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class Threshold(_Strict):
    min: float | None = None
    max: float | None = None


class RuleSettings(_Strict):
    enabled: bool = True
    severity: Severity | None = None
    promotion_severity: Severity | None = None
    params: dict[str, object] = Field(default_factory=dict)


class Section(_Strict):
    """Keys that both the policy and its scopes may set (None: not set here)."""

    protected_aliases: list[str] | None = None
    protected_stages: list[str] | None = None
    approval_tag: str | None = None
    required_params: list[str] | None = None
    required_metrics: dict[str, Threshold] | None = None
    required_tags: list[str] | None = None
    regression_metrics: dict[str, Direction] | None = None
    regression_tolerance: float | None = Field(default=None, ge=0)
    max_run_age_days: int | None = Field(default=None, ge=1)
    running_run_wait_minutes: int | None = Field(default=None, ge=0)
    unverifiable_after_hours: int | None = Field(default=None, ge=1)
    give_up_after_days: int | None = Field(default=None, ge=1)
    max_artifact_dirs: int | None = Field(default=None, ge=1, le=10000)
    rules: dict[str, RuleSettings] | None = None

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules):
        from shared.rules import catalog

        known = catalog()
        for rule_id, settings in (rules or {}).items():
            if rule_id not in known:
                raise ValueError(f"unknown rule id '{rule_id}' (known: {', '.join(sorted(known))})")
            declared = known[rule_id].params
            for key, value in settings.params.items():
                if key not in declared:
                    allowed = ", ".join(sorted(declared)) or "none"
                    raise ValueError(f"rule {rule_id} has no parameter '{key}' (parameters: {allowed})")
                expected = type(declared[key])
                if not isinstance(value, expected) or isinstance(value, bool) != isinstance(declared[key], bool):
                    raise ValueError(f"rule {rule_id} parameter '{key}' must be a {expected.__name__}")
        return rules


class Scope(Section):
    name: str | None = None
    models: list[str] = Field(min_length=1, description="registered-model name patterns (fnmatch)")


class PolicyDocument(Section):
    name: str = "custom"
    waivers_file: str | None = None
    scopes: list[Scope] = Field(default_factory=list)


_LIST_KEYS = ("protected_aliases", "protected_stages", "required_params", "required_tags")
_DICT_KEYS = ("required_metrics", "regression_metrics", "rules")
_SCALAR_KEYS = ("approval_tag", "regression_tolerance", "max_run_age_days", "running_run_wait_minutes",
                "unverifiable_after_hours", "give_up_after_days", "max_artifact_dirs")


@dataclass
class EffectivePolicy:
    """The policy as it applies to one registered model, every key resolved."""

    name: str
    digest: str
    protected_aliases: list[str]
    protected_stages: list[str]
    approval_tag: str
    required_params: list[str]
    required_metrics: dict[str, Threshold]
    required_tags: list[str]
    regression_metrics: dict[str, Direction]
    regression_tolerance: float
    max_run_age_days: int
    running_run_wait_minutes: int
    unverifiable_after_hours: int
    give_up_after_days: int
    max_artifact_dirs: int
    rules: dict[str, RuleSettings]
    scopes: list[str] = field(default_factory=list)

    def rule(self, rule_id: str) -> RuleSettings:
        return self.rules.get(rule_id) or RuleSettings()

    def is_protected(self, alias: str | None, stage: str | None) -> bool:
        if alias:
            return alias.lower() in {a.lower() for a in self.protected_aliases}
        if stage:
            return stage.lower() in {s.lower() for s in self.protected_stages}
        return False


def overlay(base: dict, section: Section, *, union_lists: bool) -> dict:
    """``base`` updated with what ``section`` sets: lists replaced (or unioned), dicts merged by key."""
    merged = dict(base)
    for key in _LIST_KEYS:
        value = getattr(section, key)
        if value is not None:
            merged[key] = list(dict.fromkeys([*base[key], *value])) if union_lists else list(value)
    for key in _DICT_KEYS:
        value = getattr(section, key)
        if value is not None:
            merged[key] = {**base[key], **value}
    for key in _SCALAR_KEYS:
        value = getattr(section, key)
        if value is not None:
            merged[key] = value
    return merged


def matches(patterns: list[str], model: str) -> bool:
    return any(fnmatch.fnmatchcase(model, p) for p in patterns)
