"""No secret reaches telemetry: finding evidence and messages are never emitted, secret settings are
scrubbed, URL credentials are stripped. Everything exported is serialised and searched."""

from __future__ import annotations

import json

from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope

from shared import telemetry

PLANTED_KEY = "AccountKey=Zm9vYmFyYmF6cXV4UGxhbnRlZFNlY3JldDEyMzQ1Njc4OTA="
TEAMS_URL = "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual?sig=TeAmSsIgNaTuRe123"
WEBHOOK_SECRET = "mlflow-webhook-secret-Planted-42"
URL_PASSWORD = "dapiUrlPassword0987654321"


def test_no_secret_appears_in_any_exported_span_log_or_metric(pipeline, report, monkeypatch):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", TEAMS_URL)
    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET", WEBHOOK_SECRET)
    report["findings"][1]["evidence"] = {"location": "run.params.storage_key", "value": PLANTED_KEY,
                                         "redacted": PLANTED_KEY[:8] + "…"}
    report["findings"][1]["message"] = f"param 'storage_key' holds {PLANTED_KEY}"
    report["subject"]["registry"] = f"https://token:{URL_PASSWORD}@mlflow.example.com/?key={URL_PASSWORD}"
    report["trigger"]["event_type"] = f"model_version.created {WEBHOOK_SECRET}"  # a secret setting's value

    with telemetry.check_span(source="mlflow", event_type=report["trigger"]["event_type"],
                              model="churn-model", version="4", registry=report["subject"]["registry"]):
        telemetry.record_report(report, duration_ms=5.0, registry_requests=3)
    telemetry.record_registry_error(report["subject"]["registry"], "unavailable")
    telemetry.record_reconcile(report["subject"]["registry"], 1, "0", 0.0)

    spans = pipeline.spans.get_finished_spans()
    logs = pipeline.logs.get_finished_logs()
    assert spans and len(logs) == 1 + len(report["findings"]) + 1
    dumped = [s.to_json() for s in spans] + [r.to_json() for r in logs]
    dumped.append(pipeline.metrics.get_metrics_data().to_json())
    # and what the Azure Monitor exporter would send
    dumped += [json.dumps(_convert_span_to_envelope(s).as_dict(), default=str) for s in spans]
    dumped += [json.dumps(_convert_log_to_envelope(r).as_dict(), default=str) for r in logs]
    everything = "\n".join(dumped)

    for needle in (PLANTED_KEY, PLANTED_KEY[:8], "Zm9vYmFy", TEAMS_URL, "TeAmSsIgNaTuRe123", WEBHOOK_SECRET,
                   URL_PASSWORD, "storage_key", "holds"):
        assert needle not in everything, needle
    assert "[redacted]" in everything  # the secret setting's value was scrubbed, not dropped silently
    assert "https://mlflow.example.com/" in everything
