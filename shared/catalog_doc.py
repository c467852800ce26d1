"""The rule catalog as Markdown (docs/rules.md is this output; a test keeps them equal)."""

from __future__ import annotations

from shared import secret_scan
from shared.rules import catalog

_CHECKS = ["registration", "promotion", "run", "job_failure", "deployment"]
_FAMILIES = {"LIN": "Lineage", "EVD": "Evidence", "GOV": "Governance (promotions)", "SEC": "Credentials",
             "JOB": "Training jobs", "DEP": "Deployments"}


def markdown() -> str:
    rules = list(catalog().values())
    lines = [
        "# Rule catalog",
        "",
        "Generated from the code (`shared/rules/`) by `evidence-gate rules`; a test fails when this file drifts.",
        "Each rule lives in one module named after its id, e.g. `LIN-001` in `shared/rules/lin_001_*.py`.",
        "Severities are defaults: a policy can change them per rule (`rules: {ID: {severity, promotion_severity}}`),",
        "disable a rule (`enabled: false`) or set its parameters (`params:`).",
        "",
        "| id | title | default severity | on promotion | runs in checks | parameters |",
        "|---|---|---|---|---|---|",
    ]
    for r in rules:
        checks = ", ".join(c for c in _CHECKS if c in r.checks)
        params = ", ".join(f"`{k}` = `{v}`" for k, v in r.params.items()) or "-"
        lines.append(f"| {r.id} | {r.title} | {r.severity} | {r.promotion_severity or r.severity} | {checks} | {params} |")
    current = None
    for r in rules:
        family = r.id.split("-")[0]
        if family != current:
            current = family
            lines += ["", f"## {_FAMILIES[family]}"]
        module = type(r).__module__.rsplit(".", 1)[-1]
        lines += ["", f"### {r.id}: {r.title}", "", f"- severity: {r.severity}"
                  + (f" (on promotion: {r.promotion_severity})" if r.promotion_severity else ""),
                  f"- source: `shared/rules/{module}.py`", f"- remediation: {r.remediation}"]
    return "\n".join(lines + _credentials()) + "\n"


def _credentials() -> list[str]:
    """What SEC-001 and SEC-002 recognise, and the reference formats never flagged (shared/secret_scan.py)."""
    lines = ["", "## Credentials recognised", "",
             "SEC-001 reports these kinds (the `kind` of its evidence) in run params and tags, version and",
             "registered-model tags and descriptions, measured on a labelled corpus (docs/performance.md). A",
             "finding shows the vendor's public prefix, if the kind has one, and the credential's total length,",
             "e.g. `AKIA…[20 chars, redacted]`, `[88 chars, redacted]`; never the value.", "",
             "| kind | what |", "|---|---|"]
    lines += [f"| `{k.name}` | {k.what} |" for k in secret_scan.KINDS]
    lines += ["", "Never flagged, as a whole value or inside one (secret references and variables):", ""]
    lines += [f"- {what}" for what, _ in secret_scan.REFERENCE_FORMATS] + [f"- {secret_scan.ENV_VAR_NAME_FORMAT}"]
    lines += ["", "SEC-002 file names, at any depth of the run's and the model's artifacts (at most the policy's",
              "`max_artifact_dirs` directories a check): "
              + ", ".join(f"`{p}`" for p in secret_scan.CREDENTIAL_FILE_PATTERNS) + "."]
    return lines
