"""Report renderings for people (table), programs (json) and code-scanning tools (SARIF 2.1.0)."""

from __future__ import annotations

import json

from shared.rules import catalog

_COLOURS = {"fail": "31", "warn": "33", "pass": "32", "error": "31", "warning": "33", "info": "36", "dim": "2"}
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _paint(text: str, key: str, colour: bool) -> str:
    return f"\033[{_COLOURS[key]}m{text}\033[0m" if colour else text


def subject_line(report: dict) -> str:
    s = report["subject"]
    if s["kind"] == "run":
        what = f"run {s['run_id']}"
    else:
        what = f"{s['model']} version {s['version']}"
    if s.get("alias"):
        what += f" -> alias '{s['alias']}'"
    elif s.get("stage"):
        what += f" -> stage '{s['stage']}'"
    return what


def deployment_job_line(job: dict) -> str:
    """``deployment job 812, run 4410: APPROVAL at task approval (job CONNECTED)``."""
    text = f"deployment job {job['job_id']}" + (f", run {job['run_id']}" if job.get("run_id") else "")
    state = [job["run_state"]] if job.get("run_state") else []
    if job.get("current_task"):
        state.append(f"at task {job['current_task']}")
    if state:
        text += ": " + " ".join(state)
    return text + (f" (job {job['job_state']})" if job.get("job_state") else "")


def table(report: dict, *, colour: bool = False) -> str:
    c = report["counts"]
    verdict = report["verdict"]
    lines = [
        f"Evidence Gate: {subject_line(report)}  [{report['check']} check]",
        _paint(f"registry {report['subject']['registry']} | policy {report['policy']['name']} "
               f"({report['policy']['digest'][:19]}) | {report['registry_requests']} registry requests", "dim", colour),
        "",
        _paint(f"{verdict.upper()}", verdict, colour)
        + f"  {c['error']} error(s), {c['warning']} warning(s), {c['info']} info, {c['waived']} waived",
    ]
    for f in report["findings"]:
        sev = f["severity"]
        label = "WAIVED" if f["waived"] else sev.upper()
        lines.append("")
        lines.append(f"  {_paint(f'{label:<8}', 'dim' if f['waived'] else sev, colour)} {f['rule_id']}  {f['title']}")
        lines.append(f"           {f['message']}")
        lines.append(f"           fix: {f['remediation']}")
        if f["waived"]:
            w = f["waiver"]
            lines.append(f"           waived by {w['approver']} until {w['expires']}: {w['reason']}")
    for w in report.get("expired_waivers", []):
        lines.append("")
        lines.append(_paint(f"  expired waiver ignored: {w['rule']} for {w['model']} (approver {w['approver']}, "
                            f"expired {w['expires']})", "warn", colour))
    if report.get("deployment_job"):
        lines += ["", f"  {deployment_job_line(report['deployment_job'])}"]
    links = report.get("links") or {}
    if links.get("version") or links.get("run"):
        lines.append("")
        for key in ("version", "run"):
            if links.get(key):
                lines.append(f"  {key}: {links[key]}")
    return "\n".join(lines) + "\n"


def as_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def sarif(report: dict) -> str:
    rules = list(catalog().values())
    index = {r.id: i for i, r in enumerate(rules)}
    s = report["subject"]
    uri = (f"models/{s['model']}/versions/{s['version']}" if s["kind"] == "model_version" else f"runs/{s['run_id']}")
    results = []
    for f in report["findings"]:
        result = {
            "ruleId": f["rule_id"],
            "ruleIndex": index[f["rule_id"]],
            "level": _SARIF_LEVEL[f["severity"]],
            "message": {"text": f"{f['message']} Fix: {f['remediation']}"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "REGISTRY"}},
                "logicalLocations": [{"name": subject_line(report), "kind": "resource"}],
            }],
            "partialFingerprints": {"evidenceGate/v1": f"{report['subject']['registry']}|{uri}|{f['rule_id']}"},
            "properties": {"evidence": f["evidence"]},
        }
        if f["waived"]:
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": f["waiver"]["reason"]}]
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "Evidence Gate",
                "informationUri": "https://github.com/evidence-gate/evidence-gate",
                "version": "0.1.0",
                "rules": [{
                    "id": r.id,
                    "name": r.title.title().replace(" ", "").replace("-", ""),
                    "shortDescription": {"text": r.title},
                    "fullDescription": {"text": r.title},
                    "help": {"text": r.remediation},
                    "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
                    "properties": {"tags": [r.id.split("-")[0].lower()]},
                } for r in rules],
            }},
            "originalUriBaseIds": {"REGISTRY": {"uri": report["subject"]["registry"].rstrip("/") + "/"}},
            "results": results,
            "properties": {"verdict": report["verdict"], "report_id": report["report_id"]},
        }],
    }
    return json.dumps(doc, indent=2) + "\n"
