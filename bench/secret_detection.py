"""Benchmark 5: credential detection quality on the labelled corpus (tests/secrets/corpus.py), per
kind, next to Yelp's detect-secrets (every plugin, default filters) on the same values. Goal
(issue 14): recall 1.00 on every kind shared/secret_scan.py claims, no false positive on the
look-alikes. No registry: the detectors read the values directly.

A key/value sample is given to shared/secret_scan.py as (name, value), as SEC-001 sees a param,
and to detect-secrets as a one-entry YAML file ``name: "value"`` (the form its keyword plugin
reads), scanned with ``scan_file`` under ``default_settings()``: every plugin, default filters.
The "pattern plugins" column counts only its format-specific plugins (not the entropy and keyword
ones)."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import header, table, verdict
from shared.secret_scan import scan_value
from tests.secrets.corpus import Sample, corpus


def ours(sample: Sample) -> bool:
    return bool(scan_value("bench", sample.value, name=sample.name))


# detect-secrets' generic plugins (any high-entropy string, any secret-sounding keyword) next to its
# pattern plugins (one format each: AWS, Azure storage, GitHub, JWT, private keys, Slack, ...).
GENERIC_PLUGINS = ("Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword")


def detect_secrets_types(sample: Sample, folder: Path) -> set[str]:
    """The secret types detect-secrets reports for the sample, scanned as a file (its normal use:
    default filters on, no ad-hoc eager search)."""
    from detect_secrets.core.scan import scan_file

    path = folder / "params.yaml"
    path.write_text(f'{sample.name}: "{sample.value}"\n' if sample.name else sample.value + "\n")
    return {secret.type for secret in scan_file(str(path))}


def _rows(results: dict[str, list[tuple[bool, set[str]]]], goal: float) -> tuple[list[tuple], bool]:
    rows, ok = [], True
    everything = [r for rs in results.values() for r in rs]
    for label, rs in [*sorted(results.items()), ("all", everything)]:
        mine = sum(r[0] for r in rs) / len(rs)
        theirs = sum(bool(r[1]) for r in rs) / len(rs)
        patterns = sum(bool(r[1] - set(GENERIC_PLUGINS)) for r in rs) / len(rs)
        ok &= mine == goal
        rows.append((label, len(rs), f"{mine:.2f}", f"{theirs:.2f}", f"{patterns:.2f}", f"{goal:.2f}",
                     verdict(mine == goal)))
    return rows, ok


def measure() -> tuple[list[tuple], list[tuple], bool]:
    from detect_secrets.settings import default_settings

    secrets, lookalikes = corpus()
    found: dict[str, list[tuple[bool, set[str]]]] = defaultdict(list)
    flagged: dict[str, list[tuple[bool, set[str]]]] = defaultdict(list)
    with default_settings(), tempfile.TemporaryDirectory() as tmp:
        for sample in secrets:
            found[sample.label].append((ours(sample), detect_secrets_types(sample, Path(tmp))))
        for sample in lookalikes:
            flagged[sample.label].append((ours(sample), detect_secrets_types(sample, Path(tmp))))
    recall_rows, recall_ok = _rows(found, 1.0)
    fp_rows, fp_ok = _rows(flagged, 0.0)
    return recall_rows, fp_rows, recall_ok and fp_ok


def main() -> int:
    header("credential detection quality")
    recall_rows, fp_rows, _ = measure()
    print(table("Recall per kind (share of the kind's secrets found)", recall_rows,
                ("kind", "samples", "secret_scan", "detect-secrets 1.5.0", "its pattern plugins", "goal", "met")))
    print(table("False-positive rate per look-alike category (share flagged)", fp_rows,
                ("look-alike", "samples", "secret_scan", "detect-secrets 1.5.0", "its pattern plugins", "goal", "met")))
    return 0  # figures, not a gate: tests/secrets/test_corpus.py asserts the goals


if __name__ == "__main__":
    raise SystemExit(main())
