"""When configure() sets Azure Monitor up, and with what (the real call is faked here)."""

from __future__ import annotations

import os
import subprocess
import sys

import azure.monitor.opentelemetry
import pytest

from shared import telemetry
from tests.support.reports import SAMPLE_REPORT

CS = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"


@pytest.fixture
def calls(monkeypatch, otel_pipeline):  # otel_pipeline first: the real session pipeline stays in place
    recorded: list[dict] = []
    monkeypatch.setattr(azure.monitor.opentelemetry, "configure_azure_monitor",
                        lambda **kwargs: recorded.append(kwargs))
    monkeypatch.setattr(telemetry, "_configured", False)
    for name in ("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    return recorded


def test_nothing_without_a_connection_string(calls):
    assert telemetry.configure() is False
    assert calls == []


def test_never_in_functions_when_the_worker_configures(calls, monkeypatch):
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", CS)
    assert telemetry.configure() is False
    assert calls == []


def test_once_locally_with_a_connection_string(calls, monkeypatch):
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", CS)
    assert telemetry.configure() is True
    assert telemetry.configure() is False
    [kwargs] = calls
    assert kwargs["connection_string"] == CS
    assert kwargs["logger_name"] == "evidence_gate"
    assert kwargs["enable_live_metrics"] is False
    assert kwargs["resource"].attributes["service.name"] == "evidence-gate"
    assert kwargs["span_processors"] == kwargs["log_record_processors"] == kwargs["metric_readers"] == []


def test_recording_without_configuration_is_a_harmless_no_op(tmp_path):
    """A fresh process with no connection string: OpenTelemetry's no-op providers, no distro import."""
    code = (
        "import json, sys; from shared import telemetry;"
        "report = json.load(open(sys.argv[1]));"
        "assert telemetry.configure() is False\n"
        "with telemetry.check_span(source='cli', model='m', version='1'):\n"
        "    telemetry.record_report(report, duration_ms=1.0)\n"
        "telemetry.record_registry_error('http://x', 'timeout'); telemetry.record_reconcile('http://x', 0, None, None)\n"
        "assert 'azure.monitor.opentelemetry' not in sys.modules"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")}
    result = subprocess.run([sys.executable, "-c", code, str(SAMPLE_REPORT)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
