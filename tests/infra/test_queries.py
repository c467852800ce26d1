"""KQL queries (infra/queries) against the telemetry contract, and the workbook that charts them."""

from __future__ import annotations

import re

import pytest

from ._tools import INFRA, tree

QUERIES = INFRA / "queries"

# The ops questions; each has its query file.
EXPECTED = {
    "verdicts-over-time",
    "top-failing-rules",
    "models-without-passing-report",
    "failing-models-this-week",
    "findings-by-rule-over-time",
    "unapproved-promotions",
    "credential-findings",
    "event-to-report-latency",
    "reconcile-lag",
}

# Telemetry contract (written by the telemetry module; queried here by exactly these names).
REPORT_EVENT = "EvidenceGateReport"
FINDING_MESSAGE = "evidence-gate finding"
RECONCILE_MESSAGE = "evidence-gate reconcile"
REPORT_PROPERTIES = {
    "report_id",
    "verdict",
    "model",
    "version",
    "alias",
    "stage",
    "source",
    "event_type",
    "registry",
    "policy_digest",
    "error_count",
    "warning_count",
    "info_count",
    "event_time",
    "generated_at",
    "latency_ms",
}
FINDING_PROPERTIES = {"rule_id", "severity", "model", "version", "verdict", "report_id", "source", "waived"}
RECONCILE_PROPERTIES = {"registry", "versions_checked", "watermark", "lag_seconds"}
METRICS = {"evidence_gate.reports", "evidence_gate.findings", "evidence_gate.check.duration", "evidence_gate.registry.errors"}
TABLES = {"AppEvents", "AppTraces", "AppMetrics"}


def kql_files():
    return sorted(QUERIES.glob("*.kql"))


def body(path) -> str:
    """The query without its // comment lines."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))


def test_every_ops_question_has_a_query():
    assert {p.stem for p in kql_files()} == EXPECTED


@pytest.mark.parametrize("path", kql_files(), ids=lambda p: p.name)
def test_query_uses_the_telemetry_contract(path):
    text = body(path)
    assert text.strip(), f"{path.name} is empty"
    assert path.read_text().lstrip().startswith("//"), f"{path.name}: start with a comment saying what it answers"
    tables = set(re.findall(r"\b(App[A-Z][a-z]+)\b", text))
    assert tables and tables <= TABLES, f"{path.name} queries {tables}"
    allowed = set()
    if "AppEvents" in tables:
        assert f'Name == "{REPORT_EVENT}"' in text
        allowed |= REPORT_PROPERTIES
    if "AppTraces" in tables:
        messages = set(re.findall(r'Message == "([^"]+)"', text))
        assert messages and messages <= {FINDING_MESSAGE, RECONCILE_MESSAGE}, messages
        if FINDING_MESSAGE in messages:
            allowed |= FINDING_PROPERTIES
        if RECONCILE_MESSAGE in messages:
            allowed |= RECONCILE_PROPERTIES
    if "AppMetrics" in tables:
        assert set(re.findall(r'Name == "([^"]+)"', text)) <= METRICS
    used = set(re.findall(r"Properties\.(\w+)", text))
    assert used, f"{path.name} reads no property"
    assert used <= allowed, f"{path.name} reads properties outside the contract: {used - allowed}"
    assert text.count("(") == text.count(")"), f"{path.name}: unbalanced parentheses"


def test_rule_queries_name_their_rules():
    assert re.search(r'in \("GOV-001", "GOV-002"\)', body(QUERIES / "unapproved-promotions.kql"))
    assert re.search(r'in \("SEC-001", "SEC-002"\)', body(QUERIES / "credential-findings.kql"))
    assert "ago(7d)" in body(QUERIES / "failing-models-this-week.kql")


def test_workbook_charts_every_query():
    workbook = tree("infra/app/workbook.bicep")
    charts = workbook["variables"]["charts"]["value"]
    loaded = {}
    for chart in charts:
        function = chart["query"]["function"]
        assert function["type"] == "load_text_content"
        loaded[chart["name"]] = function["parameters"]["file_path"]
    assert set(loaded) == EXPECTED
    for name, relative in loaded.items():
        assert relative == f"../queries/{name}.kql"
        assert (INFRA / "app" / relative).resolve().is_file()
    resource = workbook["resources"]["workbook"]
    assert resource["type"] == "Microsoft.Insights/workbooks"
    assert "workbookContent" in str(resource["config"]["properties"]["serializedData"])
    assert resource["config"]["properties"]["sourceId"] == "logAnalyticsWorkspaceId"
