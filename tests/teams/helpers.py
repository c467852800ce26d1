"""Report builders shared by the Teams tests (the project's own fixtures)."""

from __future__ import annotations

import copy
import re

SAMPLE_REPORT = {
    "schema": "evidence-gate/report/v1",
    "report_id": "9a0c4e1f2b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6",
    "verdict": "fail",
    "check": "promotion",
    "trigger": {
        "source": "databricks-registry",
        "event_type": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
        "event_id": "b2f1d7c0-0d8e-4b8e-9c51-3f0a6e7d1c22",
        "event_time": "2026-11-20T09:15:02Z",
    },
    "subject": {
        "kind": "model_version",
        "registry": "databricks",
        "model": "credit-risk-scorer",
        "version": "17",
        "run_id": "4c1b2a3d5e6f47a8b9c0d1e2f3a4b5c6",
        "alias": None,
        "stage": "Production",
    },
    "policy": {"name": "credit-strict", "digest": "sha256:" + "ab" * 32, "scopes": ["credit-*"]},
    "findings": [
        {
            "rule_id": "LIN-005",
            "severity": "warning",
            "title": "No training data lineage",
            "message": "The source run logged no dataset input.",
            "remediation": "Log the training data with mlflow.log_input(...).",
            "evidence": {},
            "waived": False,
        },
        {
            "rule_id": "GOV-002",
            "severity": "error",
            "title": "Approver is the author",
            "message": "Version 17 was approved by its own author (alice@contoso.com).",
            "remediation": "Have a second release manager review and set 'approved_by', then re-promote.",
            "evidence": {"approver": "alice@contoso.com"},
            "waived": False,
        },
        {
            "rule_id": "GOV-004",
            "severity": "info",
            "title": "No previous holder to roll back to",
            "message": "No version was in Production before.",
            "remediation": "Keep the previous production version registered so you can roll back.",
            "evidence": {},
            "waived": False,
        },
        {
            "rule_id": "EVD-004",
            "severity": "warning",
            "title": "Model has no signature",
            "message": "The MLmodel file of version 17 has no signature.",
            "remediation": "Log the model with a signature (mlflow.models.infer_signature).",
            "evidence": {},
            "waived": True,
            "waiver": {
                "rule": "EVD-004",
                "model": "credit-*",
                "reason": "Legacy scorer, signature added in Q1",
                "approver": "bob@contoso.com",
                "expires": "2027-03-31",
            },
        },
        {
            "rule_id": "EVD-003",
            "severity": "error",
            "title": "Metric below threshold",
            "message": "Metric 'auc' is 0.71, the policy minimum is 0.80.",
            "remediation": "Retrain or tune the model until auc >= 0.80, or change the threshold.",
            "evidence": {"metric": "auc", "value": 0.71, "min": 0.8},
            "waived": False,
        },
    ],
    "expired_waivers": [
        {
            "rule": "LIN-004",
            "model": "credit-*",
            "reason": "migration",
            "approver": "bob",
            "expires": "2026-10-01",
        }
    ],
    "counts": {"error": 2, "warning": 1, "info": 1, "waived": 1},
    "links": {
        "version": "https://adb-1234567890123456.7.azuredatabricks.net/ml/models/credit-risk-scorer/versions/17",
        "run": "https://adb-1234567890123456.7.azuredatabricks.net/ml/experiments/42/runs/4c1b2a3d5e6f47a8b9c0d1e2f3a4b5c6",
    },
    "evidence_digest": "sha256:cd34",
    "registry_requests": 11,
    "notes": [],
    "generated_at": "2026-11-20T09:15:04Z",
}

RULES = [
    "LIN-001",
    "LIN-002",
    "LIN-004",
    "EVD-002",
    "EVD-003",
    "EVD-005",
    "GOV-001",
    "GOV-003",
    "SEC-001",
    "GOV-005",
]


def make_report(**overrides) -> dict:
    report = copy.deepcopy(SAMPLE_REPORT)
    for key, value in overrides.items():
        report[key] = value
    return report


def many_findings(n: int, text_len: int = 1500) -> list[dict]:
    """n findings with long, partly non-ASCII texts (bytes count, not characters)."""
    severities = ["error", "warning", "info"]
    filler = "Évidence manquante — paramètre « seed » absent; "
    out = []
    for i in range(n):
        long = (filler * (text_len // len(filler) + 1))[:text_len]
        out.append(
            {
                "rule_id": RULES[i % len(RULES)],
                "severity": severities[i % 3],
                "title": f"Finding number {i}: " + "x" * 300,
                "message": f"Message {i}. " + long,
                "remediation": f"Remediation {i}. " + long,
                "evidence": {"index": i},
                "waived": i % 7 == 6,
            }
        )
    return out


_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """A card text as a reader sees it once Markdown has removed the backslash escapes.

    CommonMark: a backslash before ASCII punctuation stands for that character. Only for texts
    the card escaped (:func:`shared.sinks.teams._md`), which hold no other Markdown."""
    return _MD_ESCAPE.sub(r"\1", markdown)


# Report texts that are Markdown if taken as such: emphasis, links, images, code, autolinks, a list.
MARKDOWN_MODEL = "credit_risk_v2 **prod**"
MARKDOWN_TITLE = "**Urgent**: _retrain_ now"
MARKDOWN_MESSAGE = "See [the runbook](http://evil.example/phish) or ![x](http://evil.example/p.png) *today*"
MARKDOWN_REMEDY = "Re-run `train_job` with __force__; <https://evil.example/auto>"
MARKDOWN_REASON = "[approved](http://evil.example/ok) by _security_"
MARKDOWN_ALIAS = "champion_*"


def markdown_report() -> dict:
    """A failing report whose registry and finding texts all look like Markdown."""
    report = make_report(verdict="fail")
    report["subject"] = {**report["subject"], "model": MARKDOWN_MODEL, "alias": MARKDOWN_ALIAS}
    report["trigger"] = {**report["trigger"], "event_type": "model_version.transitioned_to_production"}
    report["findings"] = [
        {
            "rule_id": "LIN-002",
            "severity": "error",
            "title": MARKDOWN_TITLE,
            "message": MARKDOWN_MESSAGE,
            "remediation": MARKDOWN_REMEDY,
            "evidence": {},
            "waived": False,
        },
        {
            "rule_id": "EVD-004",
            "severity": "warning",
            "title": "- not a list",
            "message": "1. not a numbered list",
            "remediation": "# not a heading",
            "evidence": {},
            "waived": True,
            "waiver": {"reason": MARKDOWN_REASON, "approver": "bob_smith", "expires": "2027-03-31"},
        },
    ]
    report["expired_waivers"] = [{"rule": "LIN-004", "model": "credit_*", "expires": "2026-10-01"}]
    report["links"] = {"version": None, "run": None}
    return report
