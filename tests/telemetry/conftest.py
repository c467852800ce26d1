"""One real Azure Monitor distro pipeline per test session, exporting into memory.

OpenTelemetry's global providers can be set once per process, so this session fixture configures
them once (through ``shared.telemetry.configure``) and each test clears the in-memory exporters.
The Azure Monitor exporters the distro adds point at a closed local port with offline storage and
statsbeat disabled: their export failures are harmless and nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry

DUMMY_CONNECTION_STRING = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
)
_INSTRUMENTATIONS = (
    "azure_sdk", "django", "fastapi", "flask", "psycopg2", "requests", "urllib", "urllib3", "httpx",
)


@dataclass
class Pipeline:
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader

    def clear(self) -> None:
        self.spans.clear()
        self.logs.clear()

    def metric_points(self) -> dict[tuple[str, frozenset], Any]:
        """Cumulative value per (metric name, attributes): sums for counters, (count, sum) for histograms."""
        points: dict[tuple[str, frozenset], Any] = {}
        data = self.metrics.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset(point.attributes.items()))
                        value = getattr(point, "value", None)
                        points[key] = value if value is not None else (point.count, point.sum)
        return points


@pytest.fixture(scope="session")
def otel_pipeline() -> Pipeline:
    os.environ["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
    # the distro's own exporters fail against the closed port: keep their retry chatter out of the output
    logging.getLogger("azure.monitor.opentelemetry.exporter").setLevel(logging.CRITICAL)
    pipeline = Pipeline(InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader())
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"}
    with mock.patch.dict(os.environ, env, clear=True):
        configured = telemetry.configure(
            connection_string=DUMMY_CONNECTION_STRING,
            span_processors=[SimpleSpanProcessor(pipeline.spans)],
            log_record_processors=[SimpleLogRecordProcessor(pipeline.logs)],
            metric_readers=[pipeline.metrics],
            sampling_ratio=1.0,
            disable_offline_storage=True,
            enable_performance_counters=False,
            instrumentation_options={name: {"enabled": False} for name in _INSTRUMENTATIONS},
        )
    if not configured:
        pytest.skip("OpenTelemetry was configured earlier in this process; run tests/telemetry on its own")
    return pipeline


@pytest.fixture
def pipeline(otel_pipeline: Pipeline) -> Pipeline:
    otel_pipeline.clear()
    return otel_pipeline
