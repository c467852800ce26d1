"""The ``evidence-gate`` command line.

Exit codes (contract): 0 pass or warn, 1 fail, 2 bad usage or input, 3 registry unavailable.
Errors are one plain line on stderr; never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from shared import settings
from shared.errors import BadInput, PolicyError, RegistryUnavailable, SubjectNotFound

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


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
    check.add_argument("--store", default=settings.get("EVIDENCE_GATE_STORE"),
                       help="local report store (history for GOV-005/GOV-006; the report is saved there)")
    check.add_argument("--no-store", action="store_true", help="do not read or write the local report store")
    return parser


def _check(args) -> int:
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.render import as_json, sarif, table
    from shared.report import Trigger
    from shared.sinks.store import ReportStore

    if not args.tracking_uri:
        raise BadInput("no registry: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    policy = load_policy(args.policy, args.waivers)
    store = None if args.no_store else ReportStore(args.store)
    engine = Engine(policy, store)
    report = engine.check_version(args.tracking_uri, args.model, args.version, alias=args.alias, stage=args.stage,
                                  trigger=Trigger("cli", "check"))
    if store is not None:
        store.save(report)
    if args.format == "json":
        sys.stdout.write(as_json(report))
    elif args.format == "sarif":
        sys.stdout.write(sarif(report))
    else:
        sys.stdout.write(table(report, colour=sys.stdout.isatty()))
    return EXIT_FAIL if report["verdict"] == "fail" else EXIT_OK


COMMANDS = {"check": _check}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="evidence-gate: %(message)s")
    for noisy in ("mlflow", "urllib3", "azure", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (BadInput, PolicyError, SubjectNotFound) as exc:
        print(f"evidence-gate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RegistryUnavailable as exc:
        print(f"evidence-gate: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("evidence-gate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
