"""The telemetry contract, through the real Azure Monitor distro pipeline into in-memory exporters."""

from __future__ import annotations

import copy

import pytest
from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope
from opentelemetry.trace import StatusCode

from shared import telemetry

CUSTOM_EVENT = "microsoft.custom_event.name"


def run_check(report: dict, *, duration_ms: float = 123.4, registry_requests: int | None = 9) -> None:
    trigger, subject = report["trigger"], report["subject"]
    with telemetry.check_span(source=trigger["source"], event_type=trigger["event_type"],
                              model=subject["model"], version=subject["version"],
                              registry=subject["registry"], event_id=trigger["event_id"]):
        telemetry.record_report(report, duration_ms=duration_ms, registry_requests=registry_requests)


def events(pipeline):
    return [r for r in pipeline.logs.get_finished_logs()
            if (r.log_record.attributes or {}).get(CUSTOM_EVENT)]


def traces(pipeline, body: str):
    return [r for r in pipeline.logs.get_finished_logs() if r.log_record.body == body]


def test_span_name_and_attributes(pipeline, report):
    run_check(report)
    [span] = pipeline.spans.get_finished_spans()
    assert span.name == "evidence-gate check"
    assert span.status.status_code is StatusCode.UNSET
    attributes = {k: v for k, v in span.attributes.items() if not k.startswith("_MS.")}  # sampler's own
    assert attributes == {
        "evidence_gate.source": "mlflow",
        "evidence_gate.event_type": "model_version_alias.created",
        "evidence_gate.model": "churn-model",
        "evidence_gate.version": "4",
        "evidence_gate.registry": "http://127.0.0.1:5000",
        "evidence_gate.event_id": "6f1e0c4a-2b0d-4c1e-9f7a-1a2b3c4d5e6f",
        "evidence_gate.verdict": "fail",
        "evidence_gate.report_id": report["report_id"],
        "evidence_gate.check": "promotion",
        "evidence_gate.errors": 2,
        "evidence_gate.warnings": 1,
        "evidence_gate.infos": 1,
        "evidence_gate.registry_requests": 9,
    }
    envelope = _convert_span_to_envelope(span)  # what Azure Monitor receives: AppDependencies, InProc
    assert envelope.data.base_type == "RemoteDependencyData"
    assert envelope.data.base_data.type == "InProc"
    assert envelope.data.base_data.name == "evidence-gate check"


def test_custom_event_has_the_documented_properties(pipeline, report):
    run_check(report)
    [record] = events(pipeline)
    attributes = dict(record.log_record.attributes)
    assert attributes.pop(CUSTOM_EVENT) == "EvidenceGateReport"
    assert record.log_record.body == "EvidenceGateReport"
    assert attributes == {
        "report_id": report["report_id"],
        "verdict": "fail",
        "model": "churn-model",
        "version": "4",
        "alias": "champion",
        "stage": "",
        "source": "mlflow",
        "event_type": "model_version_alias.created",
        "registry": "http://127.0.0.1:5000",
        "policy_digest": report["policy"]["digest"],
        "error_count": "2",
        "warning_count": "1",
        "info_count": "1",
        "event_time": "2026-11-22T08:48:49Z",
        "generated_at": "2026-11-22T08:48:50Z",
        "latency_ms": "1000",
    }
    assert tuple(attributes) == telemetry.REPORT_EVENT_PROPERTIES
    envelope = _convert_log_to_envelope(record)  # lands in AppEvents as Name == "EvidenceGateReport"
    assert envelope.name == "Microsoft.ApplicationInsights.Event"
    assert envelope.data.base_type == "EventData"
    assert envelope.data.base_data.name == "EvidenceGateReport"
    assert CUSTOM_EVENT not in envelope.data.base_data.properties
    assert envelope.data.base_data.properties["verdict"] == "fail"


def test_one_trace_per_finding_with_exactly_the_documented_dimensions(pipeline, report):
    report["findings"][2]["waived"] = True
    run_check(report)
    records = traces(pipeline, "evidence-gate finding")
    assert len(records) == len(report["findings"]) == 4
    span = pipeline.spans.get_finished_spans()[0]
    for record, finding in zip(records, report["findings"], strict=True):
        attributes = dict(record.log_record.attributes)
        assert tuple(attributes) == telemetry.FINDING_DIMENSIONS
        assert all(type(v) is str for v in attributes.values())
        assert attributes == {
            "rule_id": finding["rule_id"], "severity": finding["severity"], "model": "churn-model",
            "version": "4", "verdict": "fail", "report_id": report["report_id"], "source": "mlflow",
            "waived": "true" if finding["waived"] else "false",
        }
        assert record.log_record.trace_id == span.context.trace_id  # same OperationId in Log Analytics
        envelope = _convert_log_to_envelope(record)  # lands in AppTraces
        assert envelope.data.base_type == "MessageData"
        assert envelope.data.base_data.message == "evidence-gate finding"


def test_metrics_names_and_attributes(pipeline, report):
    before = pipeline.metric_points()
    run_check(report, duration_ms=250.0)
    telemetry.record_registry_error("https://bob:pat123456@adb-1.azuredatabricks.net", "rate_limited")
    after = pipeline.metric_points()

    def delta(name: str, **attributes: str):
        key = (name, frozenset(attributes.items()))
        now, then = after.get(key), before.get(key)
        if isinstance(now, tuple):
            return now[0] - (then or (0, 0))[0], now[1] - (then or (0, 0))[1]
        return (now or 0) - (then or 0)

    assert delta("evidence_gate.reports", verdict="fail", source="mlflow") == 1
    for rule_id, severity in [("GOV-001", "error"), ("SEC-001", "error"), ("LIN-005", "warning"),
                              ("GOV-004", "info")]:
        assert delta("evidence_gate.findings", rule_id=rule_id, severity=severity) == 1
    assert delta("evidence_gate.check.duration", source="mlflow", check="promotion") == (1, 250.0)
    assert delta("evidence_gate.registry.errors", registry="https://adb-1.azuredatabricks.net",
                 kind="rate_limited") == 1
    names = {name for name, _ in after}
    assert {"evidence_gate.reports", "evidence_gate.findings", "evidence_gate.check.duration",
            "evidence_gate.registry.errors"} <= names
    for name, attributes in after:
        if name.startswith("evidence_gate."):
            assert all(type(v) is str for _, v in attributes)


def test_reconcile_trace(pipeline):
    telemetry.record_reconcile("databricks-uc", versions_checked=12, watermark="1732265330000",
                               lag_seconds=61.5)
    [record] = traces(pipeline, "evidence-gate reconcile")
    assert dict(record.log_record.attributes) == {
        "registry": "databricks-uc", "versions_checked": "12", "watermark": "1732265330000",
        "lag_seconds": "61.5",
    }


def test_failed_check_marks_the_span_with_the_error_type_only(pipeline):
    with pytest.raises(RuntimeError):
        with telemetry.check_span(source="mlflow", event_type="model_version.created", model="m", version="1"):
            raise RuntimeError("GET https://user:hunter2-token@mlflow/api failed")
    [span] = pipeline.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError"
    assert span.attributes["evidence_gate.error_type"] == "RuntimeError"
    assert not span.events  # no exception event: its message could quote a credential
    assert "hunter2" not in span.to_json()


def test_nested_values_are_never_emitted_as_reprs(pipeline, report):
    report = copy.deepcopy(report)
    report["subject"]["model"] = {"nested": "dict"}
    run_check(report)
    [record] = events(pipeline)
    assert record.log_record.attributes["model"] == "<dict>"


def test_no_span_no_error(pipeline, report):
    telemetry.record_report(report, duration_ms=1.0)  # outside any span: events and metrics still recorded
    assert len(events(pipeline)) == 1
    assert pipeline.spans.get_finished_spans() == ()
