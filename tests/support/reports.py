"""The repository's sample failing report (tests/fixtures/report-fail.json), for the sink tests."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_REPORT = Path(__file__).resolve().parents[1] / "fixtures" / "report-fail.json"


def sample_report() -> dict:
    """A fresh copy: tests may change it."""
    return json.loads(SAMPLE_REPORT.read_text("utf-8"))
