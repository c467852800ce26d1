"""`evidence-gate reports` from Log Analytics, when Evidence Gate runs in Azure.

Reads the ``EvidenceGateReport`` custom events (AppEvents) and joins the unwaived rule ids from
the ``evidence-gate finding`` traces (AppTraces), with the same filters as the local store. The
names queried are the telemetry contract of docs/telemetry.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from shared.errors import BadInput, RegistryUnavailable

DEFAULT_LOOKBACK = timedelta(days=30)


class LogsClient(Protocol):
    """What we use of ``azure.monitor.query.LogsQueryClient`` (the seam tests hand a double to)."""

    def query_workspace(self, workspace_id: str, query: str, *, timespan: Any, **kwargs: Any) -> Any: ...


def _kql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_query(*, model: str | None, version: str | None, verdict: str | None, limit: int) -> str:
    filters = [f"| where {column} == {_kql_string(value)}"
               for column, value in (("model", model), ("version", version), ("verdict", verdict)) if value is not None]
    return "\n".join([
        "let reports = AppEvents",
        "| where Name == 'EvidenceGateReport'",
        "| extend report_id = tostring(Properties.report_id), verdict = tostring(Properties.verdict),",
        "    model = tostring(Properties.model), version = tostring(Properties.version),",
        "    alias = tostring(Properties.alias), stage = tostring(Properties.stage),",
        "    source = tostring(Properties.source), event_type = tostring(Properties.event_type),",
        "    registry = tostring(Properties.registry), generated_at = tostring(Properties.generated_at)",
        *filters,
        "| summarize arg_max(TimeGenerated, *) by report_id",
        f"| top {int(limit)} by TimeGenerated desc;",
        "let rules = AppTraces",
        "| where Message == 'evidence-gate finding' and tolower(tostring(Properties.waived)) != 'true'",
        "| summarize rule_ids = make_set(tostring(Properties.rule_id)) by report_id = tostring(Properties.report_id);",
        "reports",
        "| join kind=leftouter rules on report_id",
        "| project report_id, generated_at, verdict, model, version, alias, stage, source, event_type, registry, rule_ids",
        "| order by generated_at desc",
    ])


class LogAnalyticsReports:
    def __init__(self, workspace_id: str, client: LogsClient | None = None):
        self.workspace_id = workspace_id
        self._client = client

    def _logs_client(self) -> LogsClient:
        if self._client is None:
            from azure.identity import DefaultAzureCredential
            from azure.monitor.query import LogsQueryClient

            self._client = LogsQueryClient(DefaultAzureCredential())
        return self._client

    def query(self, *, model: str | None = None, version: str | None = None, verdict: str | None = None,
              since: timedelta | None = None, limit: int = 200) -> list[dict]:
        """Report summaries, newest first, in the shape the local store's reports have."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
        from azure.monitor.query import LogsQueryStatus

        query = build_query(model=model, version=version, verdict=verdict, limit=limit)
        try:
            result = self._logs_client().query_workspace(self.workspace_id, query, timespan=since or DEFAULT_LOOKBACK)
        except ClientAuthenticationError:
            raise BadInput("cannot sign in to Log Analytics: run `az login` (or use a managed identity), or pass"
                           " --store to read the local store") from None
        except HttpResponseError as exc:
            if exc.status_code in (400, 403, 404):
                raise BadInput(f"Log Analytics workspace {self.workspace_id} refused the query ({exc.status_code}): "
                               "check EVIDENCE_GATE_LOG_ANALYTICS_WORKSPACE_ID and the Log Analytics Reader role") from None
            raise RegistryUnavailable("Log Analytics", f"HTTP {exc.status_code}") from None
        except ServiceRequestError as exc:
            raise RegistryUnavailable("Log Analytics", type(exc).__name__) from None
        if result.status != LogsQueryStatus.SUCCESS:
            raise RegistryUnavailable("Log Analytics", "partial result; retry with a shorter --since")
        (table,) = result.tables
        columns = list(table.columns)
        return [_summary(dict(zip(columns, row, strict=True))) for row in table.rows]


def _summary(row: dict) -> dict:
    rule_ids = row.get("rule_ids") or []
    if isinstance(rule_ids, str):  # dynamic columns arrive as JSON text from some API versions
        import json

        rule_ids = json.loads(rule_ids or "[]")
    return {
        "report_id": row["report_id"],
        "generated_at": row.get("generated_at") or "",
        "verdict": row["verdict"],
        "check": "",
        "subject": {"model": row.get("model") or None, "version": row.get("version") or None, "run_id": None,
                    "alias": row.get("alias") or None, "stage": row.get("stage") or None,
                    "registry": row.get("registry") or ""},
        "trigger": {"source": row.get("source") or "", "event_type": row.get("event_type") or ""},
        "findings": [{"rule_id": r, "waived": False} for r in sorted(rule_ids)],
    }
