"""Telemetry: OpenTelemetry → Azure Monitor. Names and dimensions are a contract (docs/telemetry.md).

- :func:`configure` sets Azure Monitor up once: never in Azure Functions when
  ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`` is true (the worker does it), locally only when
  ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, otherwise nothing (OpenTelemetry's no-op providers).
- :func:`check_span` wraps one check, :func:`record_report` records its report (span attributes,
  the custom event ``EvidenceGateReport``, one trace per finding, metrics).
- :func:`record_registry_error` and :func:`record_reconcile` for the registry client and the sweep.

Only flat strings leave this module as log dimensions. Finding evidence, finding messages and the
values of secret settings never do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from shared import settings

ROOT_LOGGER_NAME = "evidence_gate"
"""Logger whose records a local :func:`configure` exports (the distro's ``logger_name``)."""
LOGGER_NAME = "evidence_gate.telemetry"
INSTRUMENTATION_NAME = "evidence_gate"
SPAN_NAME = "evidence-gate check"
EVENT_NAME = "EvidenceGateReport"
CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name"
FINDING_MESSAGE = "evidence-gate finding"
RECONCILE_MESSAGE = "evidence-gate reconcile"

REPORT_EVENT_PROPERTIES: tuple[str, ...] = (
    "report_id", "verdict", "model", "version", "alias", "stage", "source", "event_type", "registry",
    "policy_digest", "error_count", "warning_count", "info_count", "event_time", "generated_at", "latency_ms",
)
FINDING_DIMENSIONS: tuple[str, ...] = (
    "rule_id", "severity", "model", "version", "verdict", "report_id", "source", "waived",
)
RECONCILE_DIMENSIONS: tuple[str, ...] = ("registry", "versions_checked", "watermark", "lag_seconds")

METRIC_REPORTS = "evidence_gate.reports"
METRIC_FINDINGS = "evidence_gate.findings"
METRIC_CHECK_DURATION = "evidence_gate.check.duration"
METRIC_REGISTRY_ERRORS = "evidence_gate.registry.errors"

_log = logging.getLogger(LOGGER_NAME)
_log.setLevel(logging.INFO)  # info records must pass whatever level the root logger has
_configure_lock = threading.Lock()
_configured = False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def configure(
    *,
    connection_string: str | None = None,
    span_processors: Sequence[Any] = (),
    log_record_processors: Sequence[Any] = (),
    metric_readers: Sequence[Any] = (),
    **options: Any,
) -> bool:
    """Configure Azure Monitor once per process; True when this call did it.

    Extra processors/readers and ``options`` go to ``configure_azure_monitor`` (tests use them to
    run the real distro into in-memory exporters)."""
    global _configured
    with _configure_lock:
        if _configured:
            return False
        if _truthy(settings.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")):
            return False  # the Functions worker configures Azure Monitor; a second call would break it
        connection_string = connection_string or settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
        if not connection_string:
            return False
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry.sdk.resources import Resource

        kwargs: dict[str, Any] = {
            "logger_name": ROOT_LOGGER_NAME,
            "enable_live_metrics": False,
            "resource": Resource.create({"service.name": "evidence-gate"}),
            **options,
        }
        configure_azure_monitor(
            connection_string=connection_string,
            span_processors=list(span_processors),
            log_record_processors=list(log_record_processors),
            metric_readers=list(metric_readers),
            **kwargs,
        )
        _configured = True
        return True


# ---------------------------------------------------------------------------------------------
# value hygiene

def safe_registry(value: Any) -> str:
    """A registry identifier fit for telemetry and message properties: URL user info, query and
    fragment removed (a tracking URI may carry credentials)."""
    text = "" if value is None else str(value)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return text.split("://", 1)[0] + "://[unparseable]"


def _secret_values() -> list[str]:
    values = [settings.get(s.name) or "" for s in settings.SETTINGS if s.secret]
    return [v for v in values if len(v) >= 6]


def _flat(value: Any, secrets: Sequence[str] = ()) -> str:
    """A dimension value: always a string, never a nested structure, never a secret setting's value."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:  # never emit a nested value (it would land as a Python repr); describe it instead
        text = f"<{type(value).__name__}>"
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text[:1024]


def _dimensions(values: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    secrets = _secret_values()
    return {name: _flat(values.get(name), secrets) for name in names}


# ---------------------------------------------------------------------------------------------
# instruments

@cache
def _instruments() -> dict[str, Any]:
    meter = metrics.get_meter(INSTRUMENTATION_NAME)
    return {
        "reports": meter.create_counter(METRIC_REPORTS, unit="{report}", description="Reports by verdict"),
        "findings": meter.create_counter(METRIC_FINDINGS, unit="{finding}", description="Findings by rule"),
        "duration": meter.create_histogram(
            METRIC_CHECK_DURATION, unit="ms", description="Duration of one check"),
        "registry_errors": meter.create_counter(
            METRIC_REGISTRY_ERRORS, unit="{error}", description="Registry errors by kind"),
    }


def _tracer() -> trace.Tracer:
    return trace.get_tracer(INSTRUMENTATION_NAME)


# ---------------------------------------------------------------------------------------------
# recorder API

@contextmanager
def check_span(
    *, source: str, event_type: str | None = None, model: str | None = None, version: str | None = None,
    registry: str | None = None, event_id: str | None = None,
) -> Iterator[Span]:
    """A span around one check. An exception marks the span failed with the exception *type* only
    (messages may quote URLs or payloads) and propagates."""
    secrets = _secret_values()
    attributes = {
        "evidence_gate.source": _flat(source, secrets),
        "evidence_gate.event_type": _flat(event_type, secrets),
        "evidence_gate.model": _flat(model, secrets),
        "evidence_gate.version": _flat(version, secrets),
        "evidence_gate.registry": _flat(safe_registry(registry), secrets),
        "evidence_gate.event_id": _flat(event_id, secrets),
    }
    with _tracer().start_as_current_span(
        SPAN_NAME, attributes=attributes, record_exception=False, set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("evidence_gate.error_type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def _severity_counts(report: Mapping[str, Any]) -> Counter[str]:
    return Counter(
        str(f.get("severity")) for f in report.get("findings") or [] if not f.get("waived")
    )


def _latency_ms(event_time: Any, generated_at: Any) -> str:
    try:
        start = datetime.fromisoformat(str(event_time).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(generated_at).replace("Z", "+00:00"))
        return str(round((end - start).total_seconds() * 1000))
    except (TypeError, ValueError):
        return ""


def record_report(
    report: Mapping[str, Any], *, duration_ms: float, registry_requests: int | None = None,
    event_time: str | None = None,
) -> None:
    """Record a finished report: attributes on the current span, the ``EvidenceGateReport`` custom
    event, one ``evidence-gate finding`` trace per finding and the metrics."""
    trigger = report.get("trigger") or {}
    subject = report.get("subject") or {}
    policy = report.get("policy") or {}
    counts = _severity_counts(report)
    if registry_requests is None:
        registry_requests = report.get("registry_requests")
    event_time = event_time or trigger.get("event_time")
    source = trigger.get("source")
    secrets = _secret_values()

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({
            "evidence_gate.source": _flat(source, secrets),
            "evidence_gate.event_type": _flat(trigger.get("event_type"), secrets),
            "evidence_gate.model": _flat(subject.get("model"), secrets),
            "evidence_gate.version": _flat(subject.get("version"), secrets),
            "evidence_gate.verdict": _flat(report.get("verdict"), secrets),
            "evidence_gate.report_id": _flat(report.get("report_id"), secrets),
            "evidence_gate.check": _flat(report.get("check"), secrets),
            "evidence_gate.errors": counts["error"],
            "evidence_gate.warnings": counts["warning"],
            "evidence_gate.infos": counts["info"],
            "evidence_gate.registry_requests": int(registry_requests or 0),
        })

    common = {
        "report_id": report.get("report_id"),
        "verdict": report.get("verdict"),
        "model": subject.get("model"),
        "version": subject.get("version"),
        "source": source,
    }
    event = _dimensions({
        **common,
        "alias": subject.get("alias"),
        "stage": subject.get("stage"),
        "event_type": trigger.get("event_type"),
        "registry": safe_registry(subject.get("registry")),
        "policy_digest": policy.get("digest"),
        "error_count": counts["error"],
        "warning_count": counts["warning"],
        "info_count": counts["info"],
        "event_time": event_time,
        "generated_at": report.get("generated_at"),
        "latency_ms": _latency_ms(event_time, report.get("generated_at")),
    }, REPORT_EVENT_PROPERTIES)
    _log.info(EVENT_NAME, extra={CUSTOM_EVENT_ATTRIBUTE: EVENT_NAME, **event})

    instruments = _instruments()
    findings = report.get("findings") or []
    for finding in findings:
        dims = _dimensions({
            **common, "rule_id": finding.get("rule_id"), "severity": finding.get("severity"),
            "waived": bool(finding.get("waived")),
        }, FINDING_DIMENSIONS)
        _log.info(FINDING_MESSAGE, extra=dims)
    for (rule_id, severity), n in Counter(
        (_flat(f.get("rule_id"), secrets), _flat(f.get("severity"), secrets)) for f in findings
    ).items():
        instruments["findings"].add(n, {"rule_id": rule_id, "severity": severity})
    instruments["reports"].add(1, {"verdict": event["verdict"], "source": event["source"]})
    instruments["duration"].record(
        float(duration_ms), {"source": event["source"], "check": _flat(report.get("check"), secrets)})


def record_registry_error(registry: str | None, kind: str) -> None:
    """Count one registry error; ``kind`` e.g. ``unavailable``, ``rate_limited``, ``timeout``."""
    secrets = _secret_values()
    _instruments()["registry_errors"].add(
        1, {"registry": _flat(safe_registry(registry), secrets), "kind": _flat(kind, secrets)})


def record_reconcile(
    registry: str | None, versions_checked: int, watermark: str | None, lag_seconds: float | None,
) -> None:
    """One ``evidence-gate reconcile`` trace per registry sweep."""
    dims = _dimensions({
        "registry": safe_registry(registry), "versions_checked": int(versions_checked),
        "watermark": watermark, "lag_seconds": None if lag_seconds is None else round(float(lag_seconds), 3),
    }, RECONCILE_DIMENSIONS)
    _log.info(RECONCILE_MESSAGE, extra=dims)


def monotonic_ms() -> float:
    """A clock for ``duration_ms`` (``monotonic_ms() - start``)."""
    return time.monotonic() * 1000.0
