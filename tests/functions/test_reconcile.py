"""Reconcile: versions registered while nothing listened are all covered afterwards; protected
alias holders are checked as promotions; the watermark only moves past what was checked; the
timer function and the `reconcile` / `reports` commands."""

from __future__ import annotations

import json
import time

import pytest

from shared.cli import main
from shared.errors import BadInput
from shared.reconcile import OVERLAP_MS, TokenBucket, parse_duration
from tests.functions.conftest import MLFLOW_SECRET, unique
from tests.support.mlflow_server import free_port
from tests.support.proxy import Fault


@pytest.fixture(scope="module")
def unheard(fn_kit):
    """Three versions registered while the webhook pointed at a port where nothing listened."""
    hook = fn_kit.client.create_webhook(name=unique("deaf"), url=f"http://127.0.0.1:{free_port()}/api/webhooks/mlflow",
                                        events=["model_version.created"], secret=MLFLOW_SECRET)
    name = unique("unheard")
    try:
        versions = [fn_kit.model_version(name), fn_kit.model_version(name, git_commit=None), fn_kit.model_version(name)]
    finally:
        fn_kit.client.delete_webhook(hook.webhook_id)
    fn_kit.client.set_registered_model_alias(name, "champion", versions[2].version)
    return name, versions


def test_reconcile_covers_every_version_registered_while_nothing_listened(gate, unheard, capsys):
    name, versions = unheard
    assert main(["reconcile", "--tracking-uri", gate.registry, "--model", name]) == 0
    out = capsys.readouterr().out
    reports = gate.reports(model=name)
    registrations = {r["subject"]["version"] for r in reports if r["check"] == "registration"}
    assert registrations == {v.version for v in versions}
    (promotion,) = [r for r in reports if r["check"] == "promotion"]
    assert promotion["subject"] == {**promotion["subject"], "version": versions[2].version, "alias": "champion"}
    assert all(r["trigger"]["source"] == "reconcile" for r in reports)
    assert "3 versions listed, 3 checked" in out and "1 promotions checked" in out
    # again: nothing new to check
    assert main(["reconcile", "--tracking-uri", gate.registry, "--model", name, "--format", "json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert (summary["checked"], summary["already"], summary["promotions"]) == (0, 3, 0)
    assert gate.store.count() == 4


def test_watermark_advances_after_a_full_sweep_and_limits_the_next(gate, unheard):
    from shared.reconcile import reconcile_registry

    first = reconcile_registry(gate.registry)
    assert first.complete and first.watermark_after is not None and first.watermark_before is None
    assert first.listed >= 3
    second = reconcile_registry(gate.registry)
    assert second.watermark_before == first.watermark_after
    assert second.checked == 0 and second.already == second.listed  # nothing new: nothing checked again
    # Versions older than the watermark minus the overlap margin are not even listed.
    gate.store.set_watermark(gate.registry, first.watermark_after + OVERLAP_MS + 1)
    third = reconcile_registry(gate.registry)
    assert third.listed == 0 and third.watermark_after == first.watermark_after + OVERLAP_MS + 1


def test_unavailable_registry_keeps_the_watermark_and_exit_3(gate, unheard, capsys):
    name, versions = unheard
    gate.proxy.always = Fault(status=503)
    assert main(["reconcile", "--tracking-uri", gate.registry]) == 3
    assert "unavailable" in capsys.readouterr().err
    assert gate.store.count() == 0 and gate.store.watermark(gate.registry) is None
    gate.proxy.reset()
    assert main(["reconcile", "--tracking-uri", gate.registry, "--model", name]) == 0
    assert {r["subject"]["version"] for r in gate.reports(model=name)} >= {v.version for v in versions}


def test_timer_function_sweeps_the_configured_registries(gate, unheard, monkeypatch):
    from azure.functions.timer import TimerRequest

    name, versions = unheard
    monkeypatch.setenv("EVIDENCE_GATE_REGISTRIES", gate.registry)
    assert gate.call("reconcile", TimerRequest(past_due=True)) is None
    assert {v.version for v in versions} <= {r["subject"]["version"] for r in gate.reports(model=name)}
    assert gate.store.watermark(gate.registry) is not None


def test_reports_command_filters_and_formats(gate, unheard, capsys):
    name, versions = unheard
    main(["reconcile", "--tracking-uri", gate.registry, "--model", name])
    capsys.readouterr()
    assert main(["reports", "--model", name, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    assert main(["reports", "--model", name, "--version", versions[1].version, "--verdict", "warn", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["subject"]["version"] == versions[1].version  # no git commit: LIN-004 warning
    assert main(["reports", "--model", name, "--since", "1h"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["generated", "verdict", "check"] and name in table
    assert main(["reports", "--since", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err


def test_token_bucket_limits_the_rate():
    bucket = TokenBucket(rate=50, capacity=1)
    start = time.monotonic()
    for _ in range(11):
        bucket.acquire()
    assert time.monotonic() - start >= 0.18


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "0h", "-1d", "1y", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(BadInput):
        parse_duration(text)
