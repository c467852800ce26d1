"""The ``evidence-gate`` command line.

Exit codes (contract): 0 pass or warn, 1 fail, 2 bad usage or input, 3 registry unavailable.
Errors are one plain line on stderr; never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

from shared import settings
from shared.errors import EXIT_UNAVAILABLE, EXIT_USAGE, BadInput, EvidenceGateError

EXIT_OK, EXIT_FAIL = 0, 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one plain line, exit 2
        self.exit(EXIT_USAGE, f"evidence-gate: {message} (see 'evidence-gate {self.prog.split()[-1]} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evidence-gate", description="Lineage and evidence gate for MLflow-compatible model registries.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="check one model version (registration, or promotion with --alias/--stage)")
    check.add_argument("--tracking-uri", default=settings.get("MLFLOW_TRACKING_URI"),
                       help="registry URI (default: $MLFLOW_TRACKING_URI)")
    check.add_argument("--model", required=True)
    check.add_argument("--version", required=True)
    target = check.add_mutually_exclusive_group()
    target.add_argument("--alias")
    target.add_argument("--stage")
    check.add_argument("--policy", default=settings.get("EVIDENCE_GATE_POLICY"), help="policy YAML (default: built-in)")
    check.add_argument("--waivers", default=settings.get("EVIDENCE_GATE_WAIVERS"), help="waivers YAML")
    check.add_argument("--format", choices=["table", "json", "sarif"], default="table")
    check.add_argument("--store", help="local SQLite report store (history for GOV-005/GOV-006; the report is saved"
                       " there); default: the shared state store when EVIDENCE_GATE_STATE is set, else $EVIDENCE_GATE_STORE")
    check.add_argument("--no-store", action="store_true", help="do not read or write any report store")

    serve = sub.add_parser("serve", help="local host for the function app (webhooks, Event Grid, reconcile timer)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.add_argument("--no-timer", action="store_true", help="do not run the reconcile timer and the Teams notifier")
    serve.add_argument("--notify-interval", type=float, default=60.0,
                       help="seconds between Teams notifier passes over the local store (default 60)")

    reconcile = sub.add_parser("reconcile", help="check every version changed since the watermark that has no report")
    reconcile.add_argument("--tracking-uri", default=None,
                           help="registry URI (default: $EVIDENCE_GATE_REGISTRIES, else $MLFLOW_TRACKING_URI)")
    reconcile.add_argument("--since", help="look back this far (30m, 24h, 7d) instead of from the watermark;"
                                           " the watermark is left unchanged")
    reconcile.add_argument("--model", help="only this registered model (the watermark is left unchanged)")
    reconcile.add_argument("--workers", type=int, default=8, help="concurrent checks (default 8)")
    reconcile.add_argument("--rate", type=float, default=None,
                           help="registry requests per second, all API classes together (default: 100; for"
                                " databricks / databricks-uc per class: registry 30, tracking 100, search 5,"
                                " under their ~40 / ~120 / ~7 limits)")
    reconcile.add_argument("--format", choices=["table", "json"], default="table")

    rules = sub.add_parser("rules", help="print the rule catalog (Markdown, as in docs/rules.md, or JSON)")
    rules.add_argument("--format", choices=["markdown", "json"], default="markdown")

    reports = sub.add_parser("reports", help="list the reports in the local store")
    reports.add_argument("--model")
    reports.add_argument("--version")
    reports.add_argument("--verdict", choices=["fail", "warn", "pass"])
    reports.add_argument("--since", help="stored within this duration: 30m, 24h, 7d")
    reports.add_argument("--limit", type=int, default=200)
    reports.add_argument("--format", choices=["table", "json"], default="table")
    reports.add_argument("--store", help="local SQLite report store (default: the shared state store when"
                         " EVIDENCE_GATE_STATE is set, else $EVIDENCE_GATE_STORE); when"
                         " EVIDENCE_GATE_LOG_ANALYTICS_WORKSPACE_ID is set and --store is not, reports come from Log Analytics")
    return parser


def _check(args) -> int:
    from shared.engine import Engine
    from shared.evidence.registry import RegistryClient, display_uri
    from shared.policy import load_policy
    from shared.render import as_json, sarif, table
    from shared.report import Trigger
    from shared.sinks.store import ReportStore

    if not args.tracking_uri:
        raise BadInput("no registry: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    policy = load_policy(args.policy, args.waivers)
    # The store is the gate's memory (history for the promotion rules) and where the report goes.
    # A local SQLite store is opened only when it exists already or there is a report to save: a
    # check that fails before checking anything leaves no .evidence-gate/ behind.
    store, save_to = None, None
    if not args.no_store:
        from shared.state import shared_store_configured

        path = args.store or settings.get("EVIDENCE_GATE_STORE")
        if shared_store_configured() and not args.store:
            store = _open_store(None)
        elif path == ":memory:" or os.path.exists(path):
            store = ReportStore(path)
        else:
            save_to = path
    registry = args.tracking_uri
    if registry.strip().lower().startswith("/subscriptions/"):  # the workspace's tracking URI, as Event Grid's checks
        from shared.sources.azureml import WorkspaceTrackingUris

        registry = WorkspaceTrackingUris(settings.get("EVIDENCE_GATE_AZUREML_REGION"))(registry.strip())
    client = RegistryClient(registry)  # an unusable URI is refused before any waiting
    engine = Engine(policy, store, client_factory=lambda _uri: client)
    with _progress(f"checking {args.model} v{args.version} in {display_uri(registry)}"):
        report = engine.check_version(registry, args.model, args.version, alias=args.alias, stage=args.stage,
                                      trigger=Trigger("cli", "check"))
    if store is not None:
        store.save(report)
    elif save_to:
        ReportStore(save_to).save(report)
    if args.format == "json":
        sys.stdout.write(as_json(report))
    elif args.format == "sarif":
        sys.stdout.write(sarif(report))
    else:
        sys.stdout.write(table(report, colour=sys.stdout.isatty()))
    return EXIT_FAIL if report["verdict"] == "fail" else EXIT_OK


PROGRESS_SECONDS = 5.0


class _progress:
    """While a slow registry keeps a command waiting, say so on stderr every PROGRESS_SECONDS
    (with the time left before the check's deadline) instead of hanging silently."""

    def __init__(self, what: str):
        self.what = what
        self._done = threading.Event()

    def __enter__(self):
        from shared.evidence.registry import check_deadline_seconds

        deadline, start = check_deadline_seconds(), time.monotonic()

        def tick():
            while not self._done.wait(PROGRESS_SECONDS):
                waited = time.monotonic() - start
                print(f"evidence-gate: {self.what}: still waiting for the registry ({waited:.0f} s; gives up after"
                      f" {deadline:g} s)", file=sys.stderr, flush=True)

        threading.Thread(target=tick, daemon=True, name="cli-progress").start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        return False


def _serve(args) -> int:
    from shared.serve import LocalHost

    if not 0 <= args.port <= 65535:
        raise BadInput(f"--port {args.port} is not a TCP port")
    try:
        host = LocalHost(args.host, args.port, background=not args.no_timer, notify_interval=max(1.0, args.notify_interval))
    except OSError as exc:
        raise BadInput(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return serve_until_stopped(host)


def serve_until_stopped(host) -> int:
    """Run a :class:`~shared.serve.LocalHost` until Ctrl+C or SIGTERM (``evidence-gate serve``)."""
    import signal

    logging.getLogger("evidence_gate").setLevel(logging.INFO)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"evidence-gate serve: listening on {host.base_url} (Ctrl+C to stop)", flush=True)
    for line in host.routes():
        print(line, flush=True)
    host.start_background()
    try:
        host.run()
    except KeyboardInterrupt:
        pass
    finally:
        host.close()
    print("evidence-gate serve: stopped", flush=True)
    return EXIT_OK


def _reconcile(args) -> int:
    import json
    import time

    from shared import reconcile
    from shared.services import Services

    since_ms = None
    if args.since:
        since_ms = int((time.time() - reconcile.parse_duration(args.since)) * 1000)
    if args.workers < 1 or (args.rate is not None and args.rate <= 0):
        raise BadInput("--workers must be at least 1 and --rate above 0")
    no_registry = BadInput("no registry: pass --tracking-uri or set EVIDENCE_GATE_REGISTRIES / MLFLOW_TRACKING_URI")
    if not (args.tracking_uri or settings.get("EVIDENCE_GATE_REGISTRIES") or settings.get("MLFLOW_TRACKING_URI")):
        raise no_registry  # before the services open any store
    services = Services.from_settings()
    targets = [args.tracking_uri] if args.tracking_uri else reconcile.registries(services)
    if not targets:
        raise no_registry
    tty = sys.stderr.isatty()
    swept = []  # (summary, every report of the sweep: a Summary keeps only the first ones)
    for target in targets:
        def progress(done, total, target=target):
            if tty:
                width = 30
                filled = width * done // max(total, 1)
                sys.stderr.write(f"\r{target[:40]} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
                sys.stderr.flush()

        reports: list[dict] = []
        summary = reconcile.reconcile_registry(target, services, since_ms=since_ms, model=args.model, workers=args.workers,
                                               rate=args.rate, progress=progress, on_report=reports.append)
        if tty:
            sys.stderr.write("\n")
        swept.append((summary, reports))
    if args.format == "json":
        sys.stdout.write(json.dumps([{**s.as_dict(), "reports": r} for s, r in swept], indent=2) + "\n")
    else:
        for s, reports in swept:
            sys.stdout.write(f"reconcile {s.line()}\n")
            for report in sorted(reports, key=lambda r: (r["model"] or "", r["version"] or "")):
                target = report.get("alias") or report.get("stage") or ""
                sys.stdout.write(f"  {report['verdict']:<5} {report['check']:<13} {report['model']} v{report['version']}"
                                 f"{' @' + target if target else ''}  {' '.join(report['findings'])}\n")
            for item in s.unavailable:
                sys.stdout.write(f"  unavailable: {item}\n")
            if s.unavailable_total > len(s.unavailable):
                sys.stdout.write(f"  ... and {s.unavailable_total - len(s.unavailable)} more unavailable\n")
    if any(not s.complete for s, _ in swept):
        print("evidence-gate: some versions could not be checked (registry unavailable); run reconcile again",
              file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_OK


def _open_store(path: str | None):
    """``--store PATH``: that SQLite file; otherwise the state store the settings configure."""
    if path:
        from shared.sinks.store import ReportStore

        return ReportStore(path)
    from shared.state import open_state

    return open_state()


def _reports(args) -> int:
    import json
    from datetime import UTC, datetime, timedelta

    from shared.reconcile import parse_duration

    lookback = timedelta(seconds=parse_duration(args.since)) if args.since else None
    if args.limit < 1:
        raise BadInput("--limit must be at least 1")
    workspace = settings.get("EVIDENCE_GATE_LOG_ANALYTICS_WORKSPACE_ID")
    if workspace and not args.store:
        from shared.sinks.log_analytics import LogAnalyticsReports

        rows = LogAnalyticsReports(workspace).query(model=args.model, version=args.version, verdict=args.verdict,
                                                    since=lookback, limit=args.limit)
    else:
        rows = _open_store(args.store).query(
            model=args.model, version=args.version, verdict=args.verdict,
            since=datetime.now(UTC) - lookback if lookback else None, limit=args.limit)
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    if not rows:
        sys.stdout.write("no reports\n")
        return EXIT_OK
    header = ("generated", "verdict", "check", "model", "version", "target", "source", "findings", "report")
    lines = [header]
    for r in rows:
        s, t = r["subject"], r["trigger"]
        findings = sorted({f["rule_id"] for f in r["findings"] if not f["waived"]})
        lines.append((r["generated_at"], r["verdict"], r.get("check", ""), s.get("model") or "-",
                      s.get("version") or s.get("run_id") or "-", s.get("alias") or s.get("stage") or "-",
                      t["source"], ",".join(findings) or "-", r["report_id"][:12]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        sys.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK


def _rules(args) -> int:
    import json

    from shared.catalog_doc import markdown
    from shared.rules import catalog

    if args.format == "json":
        rules = [{"id": r.id, "title": r.title, "severity": r.severity, "promotion_severity": r.promotion_severity or r.severity,
                  "checks": sorted(r.checks), "params": r.params, "remediation": r.remediation} for r in catalog().values()]
        sys.stdout.write(json.dumps(rules, indent=2) + "\n")
    else:
        sys.stdout.write(markdown())
    return EXIT_OK


COMMANDS = {"check": _check, "serve": _serve, "reconcile": _reconcile, "reports": _reports, "rules": _rules}


def _not_telemetry(record: logging.LogRecord) -> bool:
    """The telemetry records (``EvidenceGateReport``, ``evidence-gate finding``...) are for Azure
    Monitor; on the console they would only print their bare names."""
    return not record.name.startswith("evidence_gate.telemetry")


def main(argv: list[str] | None = None) -> int:
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(level=logging.WARNING, format="evidence-gate: %(message)s")
    for handler in root.handlers:
        if handler not in before:  # only the console handler made here
            handler.addFilter(_not_telemetry)
    for noisy in ("mlflow", "urllib3", "azure", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except EvidenceGateError as exc:
        print(f"evidence-gate: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evidence-gate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
