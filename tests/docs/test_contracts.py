"""docs/contracts.md's report example is a real report: it validates and its report_id is what the code computes."""

import json
from pathlib import Path

from shared.report import Subject, Trigger, report_id, validate, verdict_of

CONTRACTS = (Path(__file__).resolve().parents[2] / "docs" / "contracts.md").read_text()


def _example() -> dict:
    start = CONTRACTS.index("```json", CONTRACTS.index("### Example")) + len("```json")
    return json.loads(CONTRACTS[start:CONTRACTS.index("```", start)])


def test_report_example_matches_the_code():
    report = _example()
    validate(report)
    assert report["verdict"] == verdict_of(report["findings"])
    assert report["report_id"] == report_id(Subject(**report["subject"]), Trigger(**report["trigger"]),
                                            report["policy"]["digest"], report["evidence_digest"], report["findings"])
