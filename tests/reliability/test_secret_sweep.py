"""Issue 7 "Secrets": one sweep. A credential of every supported kind is planted in the run's params
and tags, the version's tags and description, the registered model's tags and description, and as
credential-named run artifacts (whose content is a credential too); every path runs over that one
version -- `evidence-gate check` (table, json, sarif), the `mlflow_webhook` function (HTTP answer,
local store file, Service Bus message), `evidence-gate reconcile` (output and its store file), the
`notify_teams` function (the card received), telemetry (the real Azure Monitor distro pipeline into
in-memory exporters, plus the envelopes the exporter would send) and every Python log record --
and everything captured is searched: no planted value, nor any 12 characters of its secret part,
appears anywhere. The findings must still report every location (SEC-001) and file (SEC-002), so
the sweep cannot pass by checking nothing.

The version is built on the function app's MLflow server (``fn_kit``, ``gate``: the fixtures of
tests/functions, imported here). Telemetry runs in a child process configured exactly like
tests/telemetry/conftest.py: OpenTelemetry's global providers can be set only once per process,
and that session fixture must still be able to set them in this one.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest

from demo.stack import TeamsInbox
from shared import secret_scan
from tests.functions import conftest as functions_conftest
from tests.functions.conftest import MLFLOW_SECRET, mlflow_headers
from tests.secrets.corpus import corpus
from tests.teams.helpers import shown

# The function app's fixtures (tests/functions/conftest.py), usable from this folder. The server,
# proxy and kit are the same code, module-scoped here: this module's server (a second one when
# tests/functions runs in the same session) stops when the sweep is done, not at the session's end.
fn_server = pytest.fixture(scope="module", name="fn_server")(functions_conftest.fn_server.__wrapped__)
fn_proxy = pytest.fixture(scope="module", name="fn_proxy")(functions_conftest.fn_proxy.__wrapped__)
fn_kit = pytest.fixture(scope="module", name="fn_kit")(functions_conftest.fn_kit.__wrapped__)
gate = functions_conftest.gate

ROOT = Path(__file__).resolve().parents[2]
BIN = os.path.join(os.path.dirname(sys.executable), "evidence-gate")
WINDOW = 12

# Every kind shared/secret_scan.py recognises in a value on its own (credential-named-value needs
# a credential-sounding key; the mappings' keys here are neutral).
KINDS = tuple(k.name for k in secret_scan.KINDS if k.name != "credential-named-value")
FILES = (".env", "deploy/ssh/id_rsa", "certs/gcp/credentials.json")  # at the root and nested (issue 14)
_SECRETS, _ = corpus()
_DRAWN: dict[str, int] = {}


def credential(kind: str) -> tuple[str, str]:
    """(value, its secret part): the next credential of ``kind`` from the labelled corpus
    (tests/secrets/corpus.py), shortest first; a different one at each location."""
    samples = sorted((s for s in _SECRETS if s.label == kind and s.name is None), key=lambda s: len(s.value))
    sample = samples[_DRAWN.get(kind, 0) % len(samples)]
    _DRAWN[kind] = _DRAWN.get(kind, 0) + 1
    return sample.value, sample.secret


class Planted:
    """Every planted value: (location, kind) -> (value, secret part), plus the artifact contents."""

    def __init__(self):
        self.values: dict[tuple[str, str], tuple[str, str]] = {}
        self.params = self._mapping("run.params", "p")
        self.run_tags = self._mapping("run.tags", "t")
        self.version_tags = self._mapping("version.tags", "vt")
        self.model_tags = self._mapping("registered_model.tags", "mt")
        self.version_description = self._text("version.description")
        self.model_description = self._text("registered_model.description")
        self.files: dict[str, tuple[str, str]] = {}
        for name, kind in zip(FILES, ("credential-assignment", "private-key", "aws-secret-access-key"), strict=True):
            value, secret = credential(kind)
            content = json.dumps({"aws_secret_access_key": secret}) if name.endswith("credentials.json") else value
            self.files[name] = (content, secret)

    def _mapping(self, prefix: str, short: str) -> dict[str, str]:
        out = {}
        for kind in KINDS:
            key = f"{short}_{kind.replace('-', '_')}"
            out[key] = self._plant(f"{prefix}.{key}", kind)
        return out

    def _text(self, location: str) -> str:
        parts = [self._plant(f"{location}#{kind}", kind) for kind in KINDS]
        return "Trained on the churn snapshot. Settings used:\n" + "\n".join(parts) + "\n"

    def _plant(self, location: str, kind: str) -> str:
        value, secret = credential(kind)
        self.values[(location, kind)] = (value, secret)
        return value

    def needles(self) -> list[tuple[str, str]]:
        """(what, text that must not appear): each value and every 12-character window of its secret part."""
        out = []
        everything = [(f"{loc} {kind}", v, s) for (loc, kind), (v, s) in self.values.items()]
        everything += [(f"artifact {name}", c, s) for name, (c, s) in self.files.items()]
        for what, value, secret in everything:
            out.append((what, value))
            out += [(what, secret[i:i + WINDOW]) for i in range(len(secret) - WINDOW + 1)]
        return out

    def expected_sec001(self) -> set[tuple[str, str]]:
        return {(loc.split("#")[0], kind) for loc, kind in self.values}


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def sec_locations(report: dict) -> tuple[set[tuple[str, str]], set[str]]:
    """What the report's findings say: SEC-001 (location, kind) pairs and SEC-002 file locations."""
    sec001 = {(f["evidence"]["location"], f["evidence"]["kind"]) for f in report["findings"] if f["rule_id"] == "SEC-001"}
    sec002 = {f["evidence"]["location"] for f in report["findings"] if f["rule_id"] == "SEC-002"}
    return sec001, sec002


def assert_reports_everything(report: dict, planted: Planted, where: str) -> None:
    sec001, sec002 = sec_locations(report)
    missing = planted.expected_sec001() - sec001
    assert not missing, f"{where}: SEC-001 does not report {sorted(missing)}"
    assert {f"run artifacts/{name}" for name in FILES} <= sec002, f"{where}: SEC-002 reports only {sorted(sec002)}"
    assert report["verdict"] == "fail", where


TELEMETRY_CHILD = textwrap.dedent("""
    import json, logging, os, sys
    from unittest import mock

    sys.path.insert(0, os.getcwd())
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared import telemetry
    from tests.telemetry.conftest import _INSTRUMENTATIONS, DUMMY_CONNECTION_STRING, Pipeline

    # the configuration of tests/telemetry/conftest.py's otel_pipeline, in this child process
    os.environ["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
    logging.getLogger("azure.monitor.opentelemetry.exporter").setLevel(logging.CRITICAL)
    p = Pipeline(InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader())
    assert telemetry.configure(
        connection_string=DUMMY_CONNECTION_STRING, span_processors=[SimpleSpanProcessor(p.spans)],
        log_record_processors=[SimpleLogRecordProcessor(p.logs)], metric_readers=[p.metrics], sampling_ratio=1.0,
        disable_offline_storage=True, enable_performance_counters=False,
        instrumentation_options={name: {"enabled": False} for name in _INSTRUMENTATIONS})
    logging.getLogger().setLevel(logging.DEBUG)

    import azure.functions as func
    import function_app
    from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
    from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope
    from shared import reconcile

    args = json.loads(sys.argv[1])
    functions = {f.get_function_name(): f for f in function_app.functions()}

    def call(name, value):
        fn = functions[name]
        (trigger,) = [b for b in json.loads(fn.get_function_json())["bindings"] if b["direction"] == "IN"]
        return fn.get_user_function()(**{trigger["name"]: value})

    body = args["body"].encode()
    req = func.HttpRequest("POST", "http://localhost/api/mlflow", headers=args["headers"], params={},
                           route_params={}, body=body)
    resp = call("mlflow_webhook", req)
    assert resp.status_code == 200, resp.get_body()
    (report,) = function_app.services().store.query(model=args["model"])
    call("notify_teams", func.ServiceBusMessage(body=json.dumps(report).encode(), content_type="application/json"))
    reconcile.reconcile_registry(args["registry"], function_app.services(), since_ms=0, model=args["model"], workers=1)

    spans = p.spans.get_finished_spans()
    logs = p.logs.get_finished_logs()
    out = {
        "spans": [s.to_json() for s in spans],
        "logs": [r.to_json() for r in logs],
        "metrics": p.metrics.get_metrics_data().to_json(),
        "span_envelopes": [json.dumps(_convert_span_to_envelope(s).as_dict(), default=str) for s in spans],
        "log_envelopes": [json.dumps(_convert_log_to_envelope(r).as_dict(), default=str) for r in logs],
        "finding_rule_ids": sorted({str(r.log_record.attributes.get("rule_id")) for r in logs
                                    if r.log_record.body == telemetry.FINDING_MESSAGE}),
    }
    with open(args["out"], "w") as fh:
        json.dump(out, fh)
""")


def test_planted_credentials_never_leave_through_any_path(gate, fn_kit, monkeypatch, tmp_path, caplog):
    planted = Planted()
    name = f"secret-sweep-{uuid.uuid4().hex[:8]}"

    # -- one real version carrying every kind in every location -------------------------------------
    fn_kit.ensure_model(name, tags=planted.model_tags, description=planted.model_description)
    trained = fn_kit.model_version(
        name, params={"learning_rate": "0.1", **planted.params}, tags=planted.run_tags,
        version_tags=planted.version_tags,  # no `owner` tag: the registered model is read (and scanned) too
        description=planted.version_description,
        artifacts={n: content for n, (content, _) in planted.files.items()})
    fn_kit.client.set_registered_model_alias(name, "champion", trained.version)  # reconcile checks a promotion too
    monkeypatch.setenv("MLFLOW_TRACKING_URI", gate.registry)  # mlflow.set_tracking_uri() (in the kit) writes it too
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    captured: dict[str, str] = {}

    # a realistic MLflow 3 `model_version.created` delivery: it carries the version's tags and description
    body = json.dumps({"entity": "model_version", "action": "created", "timestamp": datetime.now(UTC).isoformat(),
                       "data": {"name": name, "version": trained.version, "source": f"models:/{trained.model_id}",
                                "run_id": trained.run_id, "tags": planted.version_tags,
                                "description": planted.version_description}}).encode()
    inbox = TeamsInbox(str(tmp_path / "teams"))
    child_inbox = TeamsInbox(str(tmp_path / "teams-child"))  # the telemetry child's notifier posts here
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", inbox.url)

    # -- the child processes, started together: check (3 formats), reconcile, telemetry -----------------
    env = {k: v for k, v in os.environ.items()
           if k not in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")}
    children = {}

    def start(label: str, argv: list[str], store: Path) -> None:
        children[label] = (subprocess.Popen(argv, cwd=ROOT, env={**env, "EVIDENCE_GATE_STORE": str(store)},
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), store)

    for fmt in ("table", "json", "sarif"):
        start(f"check --format {fmt}", [BIN, "check", "--tracking-uri", gate.registry, "--model", name,
                                        "--version", trained.version, "--format", fmt,
                                        "--store", str(tmp_path / f"check-{fmt}.sqlite")],
              tmp_path / f"check-{fmt}.sqlite")
    # --model keeps the sweep to this model when the server holds the rest of the session's models
    start("reconcile", [BIN, "reconcile", "--tracking-uri", gate.registry, "--since", "1h", "--model", name,
                        "--format", "json"], tmp_path / "reconcile.sqlite")
    telemetry_out = tmp_path / "telemetry.json"
    child_args = {"body": body.decode(), "headers": mlflow_headers(body, secret=MLFLOW_SECRET), "model": name,
                  "registry": gate.registry, "out": str(telemetry_out)}
    env["TEAMS_WEBHOOK_URL"] = child_inbox.url
    start("telemetry", [sys.executable, "-c", TELEMETRY_CHILD, json.dumps(child_args)], tmp_path / "telemetry.sqlite")

    try:
        # -- the webhook function, publishing through a capturing Service Bus sender --------------------
        sender = gate.capture_servicebus()
        response = gate.post("mlflow_webhook", body, mlflow_headers(body))
        captured["webhook response"] = response.get_body().decode()
        assert response.status_code == 200, captured["webhook response"]
        (message,) = sender.sent
        message_body = b"".join(message.body)
        captured["servicebus message"] = "\n".join([
            message_body.decode(), json.dumps(dict(message.application_properties), default=str),
            str(message.message_id), str(message.correlation_id), str(message.subject), str(message)])
        report = json.loads(message_body)
        assert_reports_everything(report, planted, "Service Bus message")
        assert json.loads(captured["webhook response"])["reports"][0]["report_id"] == report["report_id"]
        assert {"SEC-001", "SEC-002"} <= set(json.loads(captured["webhook response"])["reports"][0]["findings"])
        assert_reports_everything(gate.reports(model=name)[0], planted, "webhook store")

        # -- the notifier: the `teams` subscription's delivery of that message ---------------------------
        gate.call("notify_teams", func.ServiceBusMessage(body=message_body, content_type=message.content_type))
        (card,) = inbox.received
        captured["teams card"] = json.dumps(card)
        # ... and as it reads: the card's texts are Markdown with the report's punctuation escaped
        # (``_`` -> ``\_``), which would split a url-safe secret in the JSON above.
        captured["teams card, as read"] = "\n".join(shown(text) for text in _strings(card))
        assert "SEC-001" in captured["teams card"] and "SEC-002" in captured["teams card"]

        # -- the child processes ---------------------------------------------------------------------------
        results = {}
        for label, (proc, store) in children.items():
            out, err = proc.communicate(timeout=120)
            results[label] = (proc.returncode, out)
            captured[f"{label} stdout+stderr"] = out + "\n" + err
            assert proc.returncode == (1 if label.startswith("check") else 0), f"{label}: {err[-2000:]}"
            if store.exists():  # the store file holds what the command saved
                for path in (store, Path(f"{store}-wal")):
                    if path.exists():
                        captured[f"{label} store {path.name}"] = path.read_bytes().decode("latin-1")
            else:
                assert label == "telemetry", f"{label}: no store file"
        assert len(child_inbox.received) == 1
        captured["teams card (telemetry child)"] = json.dumps(child_inbox.received)
    finally:
        inbox.stop()
        child_inbox.stop()
        for proc, _ in children.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    store_file = Path(gate.store_path)
    captured["webhook store file"] = store_file.read_bytes().decode("latin-1")
    wal = Path(f"{gate.store_path}-wal")
    if wal.exists():
        captured["webhook store wal"] = wal.read_bytes().decode("latin-1")

    # positive: every path reports every location
    assert_reports_everything(json.loads(results["check --format json"][1]), planted, "check --format json")
    for fmt in ("table", "sarif"):
        text = results[f"check --format {fmt}"][1]
        for location in {loc for loc, _ in planted.expected_sec001()} | {f"'{n}' in the run artifacts" for n in FILES}:
            assert location in text, f"check --format {fmt} does not mention {location}"
        assert "SEC-001" in text and "SEC-002" in text
    (swept,) = json.loads(results["reconcile"][1])
    by_check = {r["check"]: r for r in swept["reports"]}
    assert {"registration", "promotion"} <= set(by_check), swept
    for r in by_check.values():
        assert {"SEC-001", "SEC-002"} <= set(r["findings"]) and r["model"] == name
    telemetry = json.loads(telemetry_out.read_text())
    assert {"SEC-001", "SEC-002"} <= set(telemetry["finding_rule_ids"]), telemetry["finding_rule_ids"]
    assert telemetry["spans"] and telemetry["logs"]
    captured["telemetry"] = "\n".join(telemetry["spans"] + telemetry["logs"] + [telemetry["metrics"]]
                                      + telemetry["span_envelopes"] + telemetry["log_envelopes"])
    captured["python log records"] = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert name in captured["python log records"]  # the paths did log, about this version

    # negative: nothing planted appears anywhere
    corpus = "\n\x00\n".join(f"== {label} ==\n{text}" for label, text in captured.items())
    leaks = sorted({(what, needle) for what, needle in planted.needles() if needle in corpus})
    if leaks:
        where = {label for label, text in captured.items() for _, needle in leaks if needle in text}
        raise AssertionError(f"planted credentials leaked into {sorted(where)}: {leaks[:10]}")
