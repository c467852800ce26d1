"""`evidence-gate reports` from Log Analytics: the KQL sent and the rows read back, through the
azure-monitor-query SDK's own result types (built from the wire format the service returns)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryResult, LogsTable

from shared.errors import BadInput, RegistryUnavailable
from shared.sinks.log_analytics import LogAnalyticsReports, build_query

COLUMNS = [("report_id", "string"), ("generated_at", "string"), ("verdict", "string"), ("model", "string"),
           ("version", "string"), ("alias", "string"), ("stage", "string"), ("source", "string"),
           ("event_type", "string"), ("registry", "string"), ("rule_ids", "dynamic")]
ROWS = [
    ["a1" * 32, "2026-11-22T10:00:00Z", "fail", "credit-risk", "7", "champion", "", "mlflow",
     "model_version_alias.created", "https://mlflow.contoso.com", '["GOV-001","SEC-001"]'],
    ["b2" * 32, "2026-11-22T09:00:00Z", "pass", "credit-risk", "6", "", "", "reconcile", "sweep",
     "https://mlflow.contoso.com", None],
]


class FakeLogsClient:
    def __init__(self, result=None, error=None):
        self.calls = []
        self.result, self.error = result, error

    def query_workspace(self, workspace_id, query, *, timespan, **kwargs):
        self.calls.append((workspace_id, query, timespan))
        if self.error:
            raise self.error
        return self.result


def wire_result(rows=ROWS) -> LogsQueryResult:
    table = LogsTable._from_generated({"name": "PrimaryResult",
                                       "columns": [{"name": n, "type": t} for n, t in COLUMNS], "rows": rows})
    return LogsQueryResult(tables=[table])


def test_rows_become_report_summaries_with_unwaived_rule_ids():
    client = FakeLogsClient(wire_result())
    rows = LogAnalyticsReports("ws-1", client).query(model="credit-risk", limit=50)
    assert [r["verdict"] for r in rows] == ["fail", "pass"]
    assert rows[0]["subject"]["alias"] == "champion" and rows[0]["subject"]["stage"] is None
    assert [f["rule_id"] for f in rows[0]["findings"]] == ["GOV-001", "SEC-001"]
    assert rows[1]["findings"] == []
    workspace, query, _ = client.calls[0]
    assert workspace == "ws-1"
    assert "Name == 'EvidenceGateReport'" in query and "Message == 'evidence-gate finding'" in query
    assert "| where model == 'credit-risk'" in query and "| top 50 by" in query


def test_filter_values_are_quoted_not_injected():
    query = build_query(model="x' | take 1 //", version=None, verdict="fail", limit=10)
    assert "| where model == 'x\\' | take 1 //'" in query
    assert "| where verdict == 'fail'" in query


@pytest.mark.parametrize("status, error", [(403, BadInput), (503, RegistryUnavailable)])
def test_service_errors(status, error):
    failure = HttpResponseError(message="refused")
    failure.status_code = status
    with pytest.raises(error):
        LogAnalyticsReports("ws-1", FakeLogsClient(error=failure)).query()
