"""The Adaptive Card: envelope, content, ordering, summarising, byte budget, official 1.4 schema."""

from __future__ import annotations

import itertools
import json

import pytest

from shared.sinks.teams import MAX_BODY_BYTES, MAX_FINDINGS, _md, build_card, serialise

from .helpers import (
    MARKDOWN_MESSAGE,
    MARKDOWN_MODEL,
    MARKDOWN_REASON,
    MARKDOWN_REMEDY,
    MARKDOWN_TITLE,
    RULES,
    make_report,
    many_findings,
    markdown_report,
    shown,
)


def card_of(body: dict) -> dict:
    return body["attachments"][0]["content"]


def markdown_texts(node) -> list[str]:
    """Every text of the card as written: TextBlock texts, fact titles/values (all Markdown), action titles."""
    out: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            out.append(node["text"])
        if "title" in node and isinstance(node["title"], str) and ("value" in node or "url" in node):
            out.append(node["title"])
        if "value" in node and isinstance(node["value"], str):
            out.append(node["value"])
        for value in node.values():
            out.extend(markdown_texts(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(markdown_texts(item))
    return out


def texts(node) -> list[str]:
    """Every text a reader sees: the card's texts with their Markdown escapes resolved."""
    return [shown(t) for t in markdown_texts(node)]


def all_text(body: dict) -> str:
    return "\n".join(texts(card_of(body)))


def finding_containers(card: dict) -> list[dict]:
    return [b for b in card["body"] if b.get("type") == "Container" and b.get("separator")]


def finding_heads(card: dict) -> list[tuple[str, str]]:
    """(severity label, rule id) of each finding shown, in order."""
    heads = []
    for c in finding_containers(card):
        cols = c["items"][0]["columns"]
        heads.append((shown(cols[0]["items"][0]["text"]), shown(cols[1]["items"][0]["text"])))
    return heads


def test_workflows_envelope(sample_report):
    body = build_card(sample_report)
    assert body["type"] == "message"
    assert len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "contentUrl" in attachment and attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert json.loads(serialise(body)) == body


@pytest.mark.parametrize(
    "report",
    [
        make_report(),
        make_report(verdict="warn"),
        make_report(links={"version": None, "run": None}),
        make_report(findings=many_findings(60)),
        make_report(findings=[], expired_waivers=[{"rule": "LIN-005"}] * 40),
        make_report(
            subject={
                "kind": "run",
                "registry": "azureml://westeurope.api.azureml.ms/mlflow/v1.0/x",
                "run_id": "keen_ant_1",
            }
        ),
        markdown_report(),
    ],
    ids=["fail", "warn", "no-links", "60-findings", "expired-waivers", "run-subject", "markdown-texts"],
)
def test_card_validates_against_official_1_4_schema(report, card_validator):
    card = card_of(build_card(report))
    errors = sorted(card_validator.iter_errors(card), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message[:200]}" for e in errors)


def test_schema_rejects_what_teams_would_not_render(sample_report, card_validator):
    """The validator is not a rubber stamp: unknown properties and colours are caught."""
    card = card_of(build_card(sample_report))
    card["msteams"] = {"width": "Full"}  # not part of the 1.4 schema (AdaptiveCard has no extras)
    assert list(card_validator.iter_errors(card))
    card = card_of(build_card(sample_report))
    card["body"][0]["items"][1]["color"] = "Purple"
    assert list(card_validator.iter_errors(card))


def test_repo_sample_report(report, card_validator):
    body = build_card(report)
    card = card_of(body)
    assert not list(card_validator.iter_errors(card))
    text = all_text(body)
    assert "FAIL: churn-model version 4" in text
    assert "champion" in text
    assert "MLflow webhook: model_version_alias.created" in text
    for rule in ("GOV-001", "SEC-001", "LIN-005", "GOV-004"):
        assert rule in text
    # The secret's redacted form stays out of the card (evidence is not shown at all).
    assert "Zm9v" not in serialise(body).decode("utf-8")
    assert [a["title"] for a in card["actions"]] == ["Open version in MLflow UI", "Open run in MLflow UI"]


def test_verdict_header_colour_and_facts(sample_report):
    body = build_card(sample_report)
    card = card_of(body)
    header = card["body"][0]
    assert header["type"] == "Container" and header["style"] == "attention"
    verdict_block = header["items"][1]
    assert verdict_block["text"] == "FAIL: credit-risk-scorer version 17"
    assert verdict_block["color"] == "Attention" and verdict_block["size"] == "Large"
    assert header["items"][2]["text"] == "2 errors \u00b7 1 warning \u00b7 1 info \u00b7 1 waived"
    facts = {f["title"]: shown(f["value"]) for f in card["body"][1]["facts"]}
    assert facts["Model"] == "credit-risk-scorer"
    assert facts["Version"] == "17"
    assert facts["Stage"] == "Production"
    assert "Alias" not in facts
    assert facts["Trigger"] == (
        "Databricks Model Registry webhook: MODEL_VERSION_TRANSITIONED_TO_PRODUCTION at 2026-11-20T09:15:02Z"
    )
    assert facts["Run"] == "4c1b2a3d5e6f47a8b9c0d1e2f3a4b5c6"
    assert facts["Policy"].startswith("credit-strict (sha256:")
    assert card["fallbackText"].startswith("Evidence Gate FAIL: credit-risk-scorer version 17")


def test_warn_verdict_colour():
    card = card_of(build_card(make_report(verdict="warn")))
    assert card["body"][0]["style"] == "warning"
    assert card["body"][0]["items"][1]["color"] == "Warning"
    assert card["body"][0]["items"][1]["text"].startswith("WARN: ")


def test_findings_ordered_by_severity_waived_last_and_marked(sample_report):
    card = card_of(build_card(sample_report))
    assert finding_heads(card) == [
        ("ERROR", "GOV-002"),
        ("ERROR", "EVD-003"),
        ("WARNING", "LIN-005"),
        ("INFO", "GOV-004"),
        ("WARNING (waived)", "EVD-004"),
    ]
    waived = finding_containers(card)[-1]
    waived_texts = texts(waived)
    assert any(
        t.startswith("Waived: Legacy scorer") and "bob@contoso.com" in t and "2027-03-31" in t
        for t in waived_texts
    )
    first = texts(finding_containers(card)[0])
    assert "Approver is the author" in first
    assert "Version 17 was approved by its own author (alice@contoso.com)." in first
    assert any(t.startswith("Fix: Have a second release manager") for t in first)


def test_links_become_open_url_actions_named_after_the_registry_ui(sample_report):
    card = card_of(build_card(sample_report))
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open version in Databricks",
            "url": sample_report["links"]["version"],
        },
        {"type": "Action.OpenUrl", "title": "Open run in Databricks", "url": sample_report["links"]["run"]},
    ]
    azure = make_report(
        subject={
            **sample_report["subject"],
            "registry": "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s",
        },
        links={
            "version": "https://ml.azure.com/model/credit-risk-scorer:17/details?wsid=/subscriptions/s",
            "run": None,
        },
    )
    card = card_of(build_card(azure))
    assert [a["title"] for a in card["actions"]] == ["Open version in Azure ML studio"]


def test_unsafe_or_missing_links_are_not_buttons(sample_report):
    card = card_of(build_card(make_report(links={"version": "javascript:alert(1)", "run": None})))
    assert "actions" not in card
    card = card_of(build_card(make_report(links=None)))
    assert "actions" not in card


def test_expired_waivers_are_mentioned(sample_report):
    text = all_text(build_card(sample_report))
    assert "Expired waivers ignored (1): LIN-004 for credit-* (expired 2026-10-01)" in text


def test_findings_beyond_the_limit_are_summarised():
    findings = many_findings(25, text_len=40)
    body = build_card(make_report(findings=findings))
    card = card_of(body)
    assert len(finding_containers(card)) == MAX_FINDINGS
    summary = [t for t in texts(card) if t.startswith("\u2026 and ")]
    assert len(summary) == 1
    # 25 findings: error/warning/info by index % 3, every 7th waived: 8 unwaived errors come first
    assert summary[0].startswith("\u2026 and 15 more findings: ")
    assert "Rules: " in summary[0]
    assert "evidence-gate reports --model credit-risk-scorer --version 17" in summary[0]
    assert [head[0] for head in finding_heads(card)] == ["ERROR"] * 8 + ["WARNING"] * 2
    assert "Findings (25)" in texts(card)


def test_sixty_long_findings_stay_under_budget(card_validator):
    report = make_report(findings=many_findings(60, text_len=2000))
    body = build_card(report)
    raw = serialise(body)
    assert len(raw) < MAX_BODY_BYTES <= 24 * 1024
    card = card_of(body)
    assert not list(card_validator.iter_errors(card))
    assert card["body"][0]["items"][1]["text"] == "FAIL: credit-risk-scorer version 17"
    text = all_text(body)
    assert "Findings (60)" in text
    assert "more findings" in text
    for rule in ("LIN-001", "EVD-002", "GOV-001"):
        assert rule in text


@pytest.mark.parametrize("n,text_len", [(1, 50_000), (10, 20_000), (500, 5_000)])
def test_pathological_reports_still_fit_and_keep_the_verdict(n, text_len, card_validator):
    report = make_report(
        findings=many_findings(n, text_len=text_len),
        subject={**make_report()["subject"], "model": "m" * 5000, "version": "9" * 500},
        expired_waivers=[{"rule": "LIN-005", "model": "x" * 2000, "expires": "2020-01-01"}] * 300,
        notes=["n" * 10_000] * 50,
    )
    body = build_card(report)
    assert len(serialise(body)) < MAX_BODY_BYTES
    card = card_of(body)
    assert card["body"][0]["items"][1]["text"].startswith("FAIL: mmm")
    assert card["body"][0]["style"] == "attention"
    assert not list(card_validator.iter_errors(card))


def test_every_rule_id_appears_somewhere_even_when_summarised():
    findings = many_findings(40, text_len=100)
    text = all_text(build_card(make_report(findings=findings)))
    for rule in RULES:
        assert rule in text


# ----------------------------------------------------------------------------------------------
# Markdown: report texts are escaped, the card's own words are not
# ----------------------------------------------------------------------------------------------

_MARKUP = set("*_[]`")


def unescaped_markup(markdown: str) -> list[str]:
    """Characters of ``* _ [ ] `` ` `` that Markdown would read as formatting (not backslash-escaped)."""
    found, i = [], 0
    while i < len(markdown):
        if markdown[i] == "\\" and i + 1 < len(markdown):
            i += 2
            continue
        if markdown[i] in _MARKUP:
            found.append(markdown[i])
        i += 1
    return found


def test_report_texts_are_markdown_escaped_in_the_card():
    card = card_of(build_card(markdown_report()))
    model = r"credit\_risk\_v2 \*\*prod\*\*"
    header = card["body"][0]["items"]
    assert header[0]["text"] == "Evidence Gate \u00b7 Promotion check"  # our own words, as written
    assert header[1]["text"] == f"FAIL: {model} version 17"
    assert header[2]["text"] == "1 error \u00b7 0 warnings \u00b7 0 info \u00b7 1 waived"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Model"] == model
    assert facts["Alias"] == r"champion\_\*"
    assert facts["Trigger"] == (
        r"Databricks Model Registry webhook: model\_version.transitioned\_to\_production at 2026-11-20T09:15:02Z"
    )
    assert card["fallbackText"] == f"Evidence Gate FAIL: {model} version 17 (1 error \u00b7 0 warnings \u00b7 0 info \u00b7 1 waived)"
    first, waived = (markdown_texts(c) for c in finding_containers(card))
    assert first == [
        "ERROR",
        "LIN-002",
        r"\*\*Urgent\*\*: \_retrain\_ now",
        r"See \[the runbook\](http://evil.example/phish) or !\[x\](http://evil.example/p.png) \*today\*",
        r"Fix: Re-run \`train\_job\` with \_\_force\_\_; \<https://evil.example/auto>",
    ]
    assert waived == [
        "WARNING (waived)",
        "EVD-004",
        r"\- not a list",  # would be a list item
        r"1\. not a numbered list",  # would be a numbered list
        r"Fix: \# not a heading",
        r"Waived: \[approved\](http://evil.example/ok) by \_security\_, approved by bob\_smith, until 2027-03-31",
    ]
    assert r"LIN-004 for credit\_\* (expired 2026-10-01)" in "\n".join(markdown_texts(card))
    # ... and a reader sees exactly the report's texts
    shown_texts = texts(card)
    for original in (MARKDOWN_MODEL, MARKDOWN_TITLE, MARKDOWN_MESSAGE, f"Fix: {MARKDOWN_REMEDY}"):
        assert original in shown_texts
    assert any(t.startswith(f"Waived: {MARKDOWN_REASON}, approved by bob_smith") for t in shown_texts)


def _hostile(value, keep: frozenset[str], counter=None, key: str | None = None):
    """Every string of a report (but those under a key in ``keep``) replaced by a unique Markdown text."""
    counter = counter if counter is not None else itertools.count(1)
    if key in keep:
        return value
    if isinstance(value, dict):
        return {k: _hostile(v, keep, counter, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v, keep, counter) for v in value]
    if isinstance(value, str):
        n = next(counter)
        return f"*x_{n}_* [**a**](http://evil.example/{n}) `c` - 1. #"
    return value


@pytest.mark.parametrize(
    "keep",
    [frozenset({"verdict", "check", "source", "severity"}), frozenset()],
    ids=["known-kinds", "everything"],
)
def test_no_report_text_reaches_the_card_unescaped(keep, card_validator):
    """Whatever the report says, in any field the card shows, no Markdown formatting comes of it.

    ``known-kinds`` keeps the fields the card turns into its own words (verdict, check, trigger
    source, severity); ``everything`` replaces those too (the card shows unknown ones as given)."""
    report = make_report(notes=["a note"], findings=many_findings(12, text_len=60))
    report["subject"]["alias"] = "champion"
    report["findings"][0]["waiver"] = {"reason": "r", "approver": "a", "expires": "2027-01-01"}
    card = card_of(build_card(_hostile(report, keep)))
    assert not list(card_validator.iter_errors(card))
    written = markdown_texts(card) + [card["fallbackText"]]
    assert len([t for t in written if "evil.example" in t]) >= 10  # the hostile texts are shown...
    leaks = {t: unescaped_markup(t) for t in written if unescaped_markup(t)}
    assert not leaks  # ... and none of them formats


def test_texts_are_shortened_before_they_are_escaped():
    """Shortened first, then escaped: an escape is never cut in half into a stray backslash."""
    assert _md("*" * 100, 10) == "\\*" * 9 + "\u2026"
    assert _md("  a\n\n- b\r\n# c  ") == "a - b # c"  # no line, so no block, can start inside a text


def test_markdown_heavy_texts_still_fit_the_budget(card_validator):
    """Escaping can triple a text's serialised size (``*`` -> ``\\*`` -> JSON ``\\\\*``): still under budget."""
    findings = many_findings(60, text_len=100)
    for f in findings:
        f["title"], f["message"], f["remediation"] = "*_[" * 100, "]`\\*" * 600, "_" * 2000
    report = make_report(
        findings=findings,
        subject={**make_report()["subject"], "model": "_" * 5000, "version": "*" * 500},
        expired_waivers=[{"rule": "LIN-005", "model": "*" * 2000, "expires": "2020-01-01"}] * 300,
        notes=["_" * 10_000] * 50,
    )
    body = build_card(report)
    assert len(serialise(body)) < MAX_BODY_BYTES
    card = card_of(body)
    assert not list(card_validator.iter_errors(card))
    assert card["body"][0]["items"][1]["text"].startswith("FAIL: \\_\\_\\_")
