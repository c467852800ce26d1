"""Reconcile: versions registered while nothing listened are all covered afterwards; protected
alias holders are checked as promotions; the watermark only moves past what was checked; the
timer function and the `reconcile` / `reports` commands."""

from __future__ import annotations

import json
import math

import pytest

from demo.stack import free_port
from shared.cli import main
from shared.errors import BadInput
from shared.reconcile import OVERLAP_MS, TokenBucket, parse_duration
from tests.functions.conftest import MLFLOW_SECRET, unique
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

    first = reconcile_registry(gate.registry, gate.services)
    assert first.complete and first.watermark_after is not None and first.watermark_before is None
    assert first.listed >= 3
    second = reconcile_registry(gate.registry, gate.services)
    assert second.watermark_before == first.watermark_after
    assert second.checked == 0 and second.already == second.listed  # nothing new: nothing checked again
    # Versions older than the watermark minus the overlap margin are not even listed.
    gate.store.set_watermark(gate.registry, first.watermark_after + OVERLAP_MS + 1)
    third = reconcile_registry(gate.registry, gate.services)
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


def test_reconcile_checks_listed_versions_from_their_listing_with_the_same_reports(gate, fn_kit):
    """5 requests per version instead of 6 on an open-source server; the alias holder (whose listed
    record lacks its alias) is fetched again; every report equals a fresh check's."""
    from shared.reconcile import reconcile_registry
    from shared.report import Trigger

    name = unique("reuse")
    versions = [fn_kit.model_version(name) for _ in range(3)]
    fn_kit.client.set_registered_model_alias(name, "candidate", versions[0].version)  # not protected
    summary = reconcile_registry(gate.registry, gate.services, model=name)
    assert summary.checked == 3 and summary.complete
    reports = {r["subject"]["version"]: r for r in gate.reports(model=name)}
    assert {v: r["registry_requests"] for v, r in reports.items()} == {
        versions[0].version: 6, versions[1].version: 5, versions[2].version: 5}
    engine = gate.services.engine
    for v in versions:
        fresh = engine.check_version(gate.registry, name, v.version, trigger=Trigger("reconcile", "registration", "x"))
        assert reports[v.version]["evidence_digest"] == fresh["evidence_digest"]
        assert reports[v.version]["findings"] == fresh["findings"]


def test_databricks_listings_are_not_reused(gate, fn_kit):
    from shared.reconcile import listing_is_complete

    assert listing_is_complete("http://mlflow:5000") and listing_is_complete("https://mlflow.example.com")
    assert not any(map(listing_is_complete, ("databricks", "databricks-uc", "databricks://prod", "azureml://x")))
    name = unique("noreuse")
    fn_kit.model_version(name)
    from shared.reconcile import reconcile_registry

    reconcile_registry(gate.registry, gate.services, model=name, reuse_listing=False)
    (report,) = gate.reports(model=name)
    assert report["registry_requests"] == 6


@pytest.mark.parametrize("uri,databricks", [("databricks", True), ("databricks-uc", True), ("databricks://prod", True),
                                            ("databricks-uc://prod", True), ("http://mlflow:5000", False),
                                            ("https://mlflow.example.com", False),
                                            ("azureml://westeurope.api.azureml.ms/x", False)])
def test_default_rate_limits_by_registry_kind(uri, databricks):
    from shared.reconcile import DEFAULT_RATE, default_limiter

    limiter = default_limiter(uri)
    rates = {api: bucket.rate for api, bucket in limiter.buckets.items()}
    if databricks:  # with capacity 1, each class stays under Databricks' limit in every second
        assert rates["registry"] + 1 <= 40 and rates["tracking"] + 1 <= 120 and rates["search"] + 1 <= 7
        assert limiter.describe() == "registry 30/s, tracking 100/s, search 5/s"
    else:  # one bucket for every request
        assert len({id(b) for b in limiter.buckets.values()}) == 1 and rates["registry"] == DEFAULT_RATE
        assert limiter.describe() == "100/s"


def test_per_class_limits_are_independent_and_each_holds():
    """A sweep's tracking requests do not wait behind the registry's lower limit, and every class
    keeps to its own rate in every second."""
    from shared.reconcile import RateLimiter

    clock = FakeClock()
    limiter = RateLimiter.per_class({"registry": 30, "tracking": 100, "search": 5}, clock=clock, sleep=clock.sleep)
    times = {"registry": [], "tracking": [], "search": []}
    pattern = ["tracking"] * 5 + ["registry"]  # a Databricks registration check: 1 registry, 5 tracking
    for i in range(600):
        api = pattern[i % len(pattern)] if i % 50 else "search"
        limiter.acquire(api)
        times[api].append(clock.now)
    assert peak(times["registry"]) <= 30 and peak(times["tracking"]) <= 100 and peak(times["search"]) <= 5
    # 100 registry + ~490 tracking + 12 searches: the searches (5/s) set the pace, not 600 / 30 s
    assert clock.now - 1000.0 < 600 / 30


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def peak(times: list[float], window: float = 1.0) -> int:
    """The most acquisitions in any half-open window [t, t + window)."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def acquisitions(bucket: TokenBucket, clock: FakeClock, n: int, idle: float = 0.0) -> list[float]:
    times = []
    for i in range(n):
        if idle and i % 200 == 100:
            clock.sleep(idle)  # a pause: the bucket refills to its capacity
        bucket.acquire()
        times.append(clock.now)
    return times


@pytest.mark.parametrize("rate", [30.0, 100.0, 20.0, 7.5])
def test_token_bucket_peak_in_any_second_stays_at_the_rate(rate):
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)  # the default capacity: 1, no burst
    times = acquisitions(bucket, clock, 600, idle=2.5)
    assert peak(times) <= math.ceil(rate)  # the first second and the seconds after a pause included
    assert peak(times) >= int(rate) - 1  # and it does let the rate through
    steady = acquisitions(TokenBucket(rate, clock=clock, sleep=clock.sleep), clock, 301)
    assert 300 / rate <= steady[-1] - steady[0] <= 300 / rate * 1.001


def test_token_bucket_keeps_its_rate_when_wake_ups_come_late():
    """A loaded machine wakes each sleeping thread late (here 3 ms): the bucket hands out slots,
    so the lateness delays that one request, not every later one (counting tokens at wake-up
    time lost 3 ms of every 10 ms interval: 13 s for 10 s of requests)."""
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock, sleep=lambda seconds: clock.sleep(seconds + 0.003))
    times = acquisitions(bucket, clock, 1001)
    assert times[-1] - times[0] <= 1000 / 100 + 0.003 + 1e-6
    assert peak(times) <= 100


def test_token_bucket_burst_adds_to_the_first_second():
    """Why the capacity is 1: a capacity equal to the rate (the previous default) let ~2x the rate
    through in the first second; the bound is capacity - 1 + rate."""
    for capacity in (1, 5, 30):
        clock = FakeClock()
        times = acquisitions(TokenBucket(30, capacity=capacity, clock=clock, sleep=clock.sleep), clock, 200)
        assert peak(times) <= capacity - 1 + 30
    assert peak(times) >= 58


def test_token_bucket_rate_zero_is_unlimited():
    clock = FakeClock()
    bucket = TokenBucket(0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        bucket.acquire()
    assert clock.now == 1000.0


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "0h", "-1d", "1y", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(BadInput):
        parse_duration(text)


def test_quiet_sweep_costs_two_requests_whatever_the_registry_size(gate, unheard):
    """Goal: a sweep with nothing changed since the watermark costs at most 5 requests. It lists
    the versions and the registered models newest-updated first and stops at the watermark; the
    models listing carries the aliases, so no model is fetched on its own."""
    from shared.reconcile import reconcile_registry

    first = reconcile_registry(gate.registry, gate.services)  # everything, and today's full alias pass
    assert first.listed >= 3
    # Nothing changes; the next sweep starts after everything that exists (past the overlap margin).
    gate.store.set_watermark(first.registry, first.watermark_after + OVERLAP_MS + 1)
    gate.proxy.reset()
    quiet = reconcile_registry(gate.registry, gate.services)
    assert gate.proxy.count() == 2, gate.proxy.requests  # one page of versions, one of models
    assert quiet.listed == 0 and quiet.checked == quiet.promotions == 0


def test_steady_alias_holder_costs_nothing_beyond_the_listing(gate, unheard):
    """Goal: a protected alias whose holder already has a promotion report for the current policy
    costs no request beyond the listing."""
    from shared.reconcile import reconcile_registry

    name, versions = unheard
    reconcile_registry(gate.registry, gate.services)  # checks the champion holder once
    gate.proxy.reset()
    again = reconcile_registry(gate.registry, gate.services, now=lambda: 10**10)  # far ahead: a full alias pass too
    pages = gate.proxy.count()
    assert again.promotions == 0 and again.checked == 0
    # only listings: version pages and model pages (200 a page), nothing fetched one by one
    assert all("/search" in path for _, path in gate.proxy.requests), gate.proxy.requests
    assert pages <= 2 + 2 * math.ceil(len(gate.store.query(limit=10_000)) / 200) + 2


def test_an_alias_change_moves_no_timestamp_on_open_source_mlflow(gate, fn_kit):
    """Why reconcile makes a full alias pass daily (ALIAS_PASS_MS): on an open-source server,
    setting an alias updates neither the registered model's nor the version's last-updated time
    (mlflow/store/model_registry/sqlalchemy_store.py set_registered_model_alias), so a sweep that
    stops at its watermark cannot see it. The daily pass does."""
    from shared.reconcile import reconcile_registry

    name = unique("alias-signal")
    versions = [fn_kit.model_version(name), fn_kit.model_version(name)]
    before = fn_kit.client.get_registered_model(name).last_updated_timestamp
    version_before = fn_kit.client.get_model_version(name, versions[0].version).last_updated_timestamp
    first = reconcile_registry(gate.registry, gate.services)
    fn_kit.client.set_registered_model_alias(name, "champion", versions[0].version)
    assert fn_kit.client.get_registered_model(name).last_updated_timestamp == before
    assert fn_kit.client.get_model_version(name, versions[0].version).last_updated_timestamp == version_before
    gate.store.set_watermark(first.registry, first.watermark_after + OVERLAP_MS + 1)
    quiet = reconcile_registry(gate.registry, gate.services)
    assert quiet.promotions == 0  # not visible before the daily pass
    daily = reconcile_registry(gate.registry, gate.services, now=lambda: 10**10)
    assert daily.promotions == 1
    (promotion,) = [r for r in gate.reports(model=name) if r["check"] == "promotion"]
    assert promotion["subject"]["alias"] == "champion"
