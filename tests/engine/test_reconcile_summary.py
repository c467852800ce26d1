"""A sweep's Summary stays small whatever the sweep's size: counts of everything, a capped sample
of lines, and a log record for the timer function that fits an Application Insights property."""

from __future__ import annotations

from shared.reconcile import LOG_LINES, SAMPLE, Summary


def test_counts_everything_and_keeps_a_capped_sample():
    summary = Summary(registry="http://registry")
    for i in range(SAMPLE + 5):
        summary.add_skipped(f"m v{i}: gone")
        summary.add_unavailable(f"m v{i}: registry unavailable")
    assert (summary.skipped_total, summary.unavailable_total) == (SAMPLE + 5, SAMPLE + 5)
    assert len(summary.skipped) == len(summary.unavailable) == SAMPLE
    assert not summary.complete
    assert f"{SAMPLE + 5} unavailable" in summary.line()


def test_the_log_record_carries_the_counts_and_the_first_lines_only():
    summary = Summary(registry="http://registry")
    for i in range(SAMPLE):
        summary.add_unavailable(f"model-{i} v1: registry unavailable (HTTP 503)")
    fields = summary.log_fields()
    assert fields["unavailable_total"] == SAMPLE and fields["unavailable"] == summary.unavailable[:LOG_LINES]
    assert fields["complete"] is False and "reports" not in fields
    assert len(str(fields["unavailable"])) < 8192
    assert len(summary.as_dict()["unavailable"]) == SAMPLE  # the CLI's JSON keeps the whole sample
