"""The three kinds of trouble, end to end, against the real MLflow server through the proxy:

- *cannot read this evidence*: a version with no run whose artifacts sit in an Azure storage
  account Evidence Gate has no credential for gets a FAIL report with LIN-001 and EVD-008 naming
  the account and what to configure, through every source (webhook 200, Event Grid completed,
  CLI exit 1), never a retry loop, never a false EVD-006;
- *transient*: a 503 registry answers 503 + Retry-After, Event Grid raises, the CLI exits 3, no
  report; a registry slower than the check's deadline gives up within it;
- and a reconcile sweep over a registry holding such versions covers every other version, moves
  its watermark on, retries the transient one with backoff, reports it unverifiable after the
  policy's bound, and re-checks the EVD-008 one hourly without sending the same report again;
  one that stays unavailable for the policy's days gets a last report and is no longer retried.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.cli import main
from shared.errors import RegistryUnavailable
from tests.reliability.conftest import answer
from tests.support.proxy import Fault

LAKE = "abfss://models@lake.dfs.core.windows.net/churn/m"


@pytest.fixture(autouse=True)
def no_azure_credential(monkeypatch, tmp_path):
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "IDENTITY_ENDPOINT", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")  # no Azure CLI


@pytest.fixture(scope="module")
def lake_model(kit):
    """churn-model-*: v1 has no run and its artifacts in storage account 'lake'; v2 is clean; v3 is
    clean but its run will be answered 503."""
    name = f"churn-model-{uuid.uuid4().hex[:6]}"
    unreadable = kit.model_version(name, style="orphan", source=LAKE)
    clean = kit.model_version(name)
    flaky = kit.model_version(name)
    return name, unreadable, clean, flaky


def _findings(report: dict) -> set[str]:
    return {f["rule_id"] for f in report["findings"] if not f["waived"]}


def _evd008(report: dict) -> dict:
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "EVD-008"]
    return finding


def test_unreadable_storage_is_evd_008_naming_the_account_through_every_source(app, lake_model, capsys):
    name, unreadable, _, _ = lake_model
    status, body = answer(app.mlflow_created(name, unreadable.version))
    assert status == 200, body
    report = app.store.get(body["reports"][0]["report_id"])
    assert report["verdict"] == "fail" and _findings(report) == {"LIN-001", "EVD-008"}  # no false EVD-006
    finding = _evd008(report)
    assert "storage account 'lake'" in finding["message"]
    assert "no Azure credential configured" in finding["message"] and "AZURE_STORAGE_CONNECTION_STRING" in finding["message"]
    assert finding["evidence"]["location"].startswith("https://lake.blob.core.windows.net/models/churn/m")

    assert app.eventgrid_registered(name, unreadable.version) is None  # completed, not redelivered
    assert main(["check", "--tracking-uri", app.registry, "--model", name, "--version", unreadable.version,
                 "--format", "json"]) == 1
    cli = json.loads(capsys.readouterr().out)
    assert _findings(cli) == {"LIN-001", "EVD-008"}


def test_transient_trouble_is_retried_by_every_source_and_never_reported(app, lake_model, fast_fail, capsys):
    name, _, clean, _ = lake_model
    app.proxy.always = Fault(status=503)
    status, body = answer(app.mlflow_created(name, clean.version))
    resp = app.mlflow_created(name, clean.version)
    assert status == 503 and body["error"] == "registry_unavailable" and int(resp.headers["Retry-After"]) > 0
    with pytest.raises(RegistryUnavailable):
        app.eventgrid_registered(name, clean.version)
    assert main(["check", "--tracking-uri", app.registry, "--model", name, "--version", clean.version]) == 3
    assert "retry later" in capsys.readouterr().err
    assert app.store.count() == 0


def test_a_registry_slower_than_the_deadline_gets_503_within_it(app, lake_model, monkeypatch):
    name, _, clean, _ = lake_model
    monkeypatch.setenv("EVIDENCE_GATE_CHECK_DEADLINE_SECONDS", "2")
    app.proxy.always = Fault(delay=6)
    status, body = answer(app.mlflow_created(name, clean.version))
    assert status == 503 and ("timed out" in body["message"] or "deadline" in body["message"]), body
    assert app.proxy.count() <= 2  # no retry fits in what is left of the deadline
    assert app.store.count() == 0


def test_a_sweep_moves_on_retries_with_backoff_and_reports_what_it_could_not_check(app, lake_model, fast_fail):
    from shared.reconcile import reconcile_registry

    name, unreadable, clean, flaky = lake_model
    app.proxy.matching[flaky.run_id] = Fault(status=503)
    start = time.time()

    made = []  # every report of a sweep (the Summary keeps the first 1,000; the session registry holds more tests')
    first = reconcile_registry(app.registry, app.services, now=lambda: start, on_report=made.append)
    by_version = {r["version"]: r for r in made if r["model"] == name}
    assert set(by_version) == {unreadable.version, clean.version}  # everything else was checked
    assert by_version[unreadable.version]["findings"] == ["EVD-008", "LIN-001"]
    assert any(f"{name} v{flaky.version}" in item for item in first.unavailable)
    assert first.watermark_after is not None  # moved on, past the version that failed
    mark = first.watermark_after

    # Two minutes later the flaky one is due again (and still failing); the EVD-008 one is not due yet.
    second = reconcile_registry(app.registry, app.services, now=lambda: start + 120)
    assert second.rechecked == 0 and any(f"{name} v{flaky.version}" in item for item in second.unavailable)
    assert second.watermark_after >= mark

    # A day later: the flaky one is reported as not checkable (once), the EVD-008 one re-checked
    # and, unchanged, not sent again.
    def sent_for(version: str) -> int:  # Service Bus messages about that version of ours
        def text(v):
            return v.decode() if isinstance(v, bytes) else v

        props = [{text(k): text(v) for k, v in m.application_properties.items()} for m in app.sent]
        return sum(1 for p in props if (p.get("model"), p.get("version")) == (name, version))

    unreadable_sent = sent_for(unreadable.version)
    made.clear()
    day = reconcile_registry(app.registry, app.services, now=lambda: start + 25 * 3600, on_report=made.append)
    # (other tests' versions of the session registry may be remembered too: count ours)
    assert [r["version"] for r in made if r["model"] == name and r["check"] == "unverifiable"] == [flaky.version]
    assert day.rechecked >= 1
    (unverifiable,) = [r for r in app.reports(model=name) if r["check"] == "unverifiable"]
    assert unverifiable["subject"]["version"] == flaky.version and _findings(unverifiable) == {"EVD-008"}
    assert "stayed unavailable for 25 h" in _evd008(unverifiable)["message"]
    assert sent_for(flaky.version) == 1  # the unverifiable report, once
    assert sent_for(unreadable.version) == unreadable_sent  # re-checked, unchanged: not sent again

    # The registry recovers: the next due sweep checks it for real and forgets it.
    app.proxy.matching.clear()
    made.clear()
    later = reconcile_registry(app.registry, app.services, now=lambda: start + 27 * 3600, on_report=made.append)
    assert any(r["model"] == name and r["version"] == flaky.version and r["check"] == "registration" for r in made)
    assert not [item for item in later.unavailable if name in item]
    assert app.store.get_pending(later.registry, f"{name}\x1f{flaky.version}\x1f") is None

    # Still unreadable eight days on: its report stands, the hourly re-checks stop (give_up_after_days).
    key = f"{name}\x1f{unreadable.version}\x1f"
    assert app.store.get_pending(later.registry, key)["kind"] == "unreadable"
    week = reconcile_registry(app.registry, app.services, model=name, now=lambda: start + 8 * 86400)
    assert any(f"{name} v{unreadable.version}: evidence still unreadable after 7 days" in line for line in week.skipped)
    assert app.store.get_pending(later.registry, key) is None
    assert sent_for(unreadable.version) == unreadable_sent


def test_a_version_unavailable_for_a_week_gets_a_last_report_and_is_no_longer_retried(app, kit, fast_fail, capsys):
    from shared.reconcile import reconcile_registry

    name = f"stuck-model-{uuid.uuid4().hex[:6]}"
    stuck = kit.model_version(name)
    app.proxy.matching[stuck.run_id] = Fault(status=503)
    start = time.time()

    def sweep(hours: float):
        return reconcile_registry(app.registry, app.services, model=name, now=lambda: start + hours * 3600)

    def unverifiable_sent() -> int:  # Service Bus messages: this model's unverifiable reports
        def text(v):
            return v.decode() if isinstance(v, bytes) else v

        props = [{text(k): text(v) for k, v in m.application_properties.items()} for m in app.sent]
        return sum(1 for p in props if p.get("model") == name and p.get("check") == "unverifiable")

    assert any(f"{name} v{stuck.version}" in item for item in sweep(0).unavailable)
    day = sweep(25)  # reported once, still retried
    assert [r["check"] for r in day.reports] == ["unverifiable"] and not day.given_up and not day.complete
    week = sweep(7 * 24 + 1)  # the policy's 7 days: a last report, and no more retries
    (last,) = week.reports
    assert last["check"] == "unverifiable" and week.given_up == 1
    assert week.complete and any("no longer retried" in item for item in week.skipped)  # not "run it again later"
    message = _evd008(app.store.get(last["report_id"]))["message"]
    assert "stayed unavailable for 169 h" in message and "no longer retried" in message
    assert f"evidence-gate reconcile --model {name} --since 9d" in message
    assert unverifiable_sent() == 2
    key = f"{name}\x1f{stuck.version}\x1f"
    assert app.store.get_pending(week.registry, key)["kind"] == "given_up"
    later_ms = int((start + 365 * 86400) * 1000)
    assert not [item for _, item in app.store.due_pending(week.registry, later_ms) if item["model"] == name]

    # Asked for again while still failing: tried, and it stays given up without another report.
    again = sweep(8 * 24)
    assert not again.reports and again.given_up == 0 and again.complete and unverifiable_sent() == 2

    # The registry answers again: the command the report names checks it and forgets it.
    app.proxy.matching.clear()
    assert main(["reconcile", "--tracking-uri", app.registry, "--model", name, "--since", "9d"]) == 0
    assert "1 checked" in capsys.readouterr().out
    assert app.store.get_pending(week.registry, key) is None
    assert [r["check"] for r in app.reports(model=name)].count("registration") == 1
