"""One contract for both state stores: the SQLite ReportStore and the Table Storage store on a real
Azurite (tests/support/azurite.py). Every method of shared.state.StateStore, de-duplication by
report id, monotonic watermarks under concurrent writers, and a report larger than one Table
property (64 KiB) round-tripping."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from shared.sinks.store import ReportStore
from shared.state.table import TableStateStore, key
from tests.support.reports import sample_report

REGISTRY = "http://127.0.0.1:5000"


@pytest.fixture(params=["sqlite", "table"])
def state(request, tmp_path):
    if request.param == "sqlite":
        return ReportStore(str(tmp_path / "state.sqlite"))
    azurite = request.getfixturevalue("azurite")
    table = TableClient.from_connection_string(azurite.connection_string, f"contract{secrets.token_hex(6)}")
    return TableStateStore(table)


def make(model="churn", version="1", *, check="registration", verdict="pass", registry=REGISTRY, source="mlflow",
         event_type="model_version.created", event_id=None, digest="d1", alias=None) -> dict:
    report = sample_report()
    report["report_id"] = secrets.token_hex(16)
    report["check"], report["verdict"] = check, verdict
    report["subject"].update(registry=registry, model=model, version=version, alias=alias, stage=None)
    report["trigger"].update(source=source, event_type=event_type, event_id=event_id or secrets.token_hex(8))
    report["policy"]["digest"] = digest
    return report


def test_save_dedups_by_report_id_and_get_round_trips(state):
    report = make()
    assert state.save(report) is True
    assert state.save(report) is False
    assert state.get(report["report_id"]) == report
    assert state.get("missing") is None
    assert state.count() == 1


def test_query_filters_and_orders_newest_first(state):
    old = make(version="1", verdict="fail")
    state.save(old)
    new = make(version="2", verdict="pass")
    state.save(new)
    other = make(model="fraud", version="1", verdict="fail")
    state.save(other)
    assert [r["report_id"] for r in state.query()] == [other["report_id"], new["report_id"], old["report_id"]]
    assert [r["report_id"] for r in state.query(model="churn")] == [new["report_id"], old["report_id"]]
    assert [r["report_id"] for r in state.query(model="churn", version="1")] == [old["report_id"]]
    assert [r["report_id"] for r in state.query(verdict="fail")] == [other["report_id"], old["report_id"]]
    assert [r["report_id"] for r in state.query(limit=1)] == [other["report_id"]]
    assert state.query(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert len(state.query(since=datetime.now(UTC) - timedelta(hours=1))) == 3


def test_reports_for_event_finds_the_event_reports_in_order(state):
    first = make(version="1", event_id="ev-1", event_type="run.completed")
    second = make(version="2", event_id="ev-1", event_type="run.completed")
    state.save(first)
    state.save(second)
    state.save(make(version="3", event_id="ev-2", event_type="run.completed"))
    found = state.reports_for_event("mlflow", "run.completed", "ev-1")
    assert [r["report_id"] for r in found] == [first["report_id"], second["report_id"]]
    assert state.reports_for_event("mlflow", "other", "ev-1") == []


def test_has_report_matches_registry_model_version_digest_and_check(state):
    state.save(make(version="12", digest="d1", check="registration"))
    assert state.has_report(REGISTRY, "churn", "12", "d1", "registration")
    assert not state.has_report(REGISTRY, "churn", "12", "d2", "registration")
    assert not state.has_report(REGISTRY, "churn", "12", "d1", "promotion")
    assert not state.has_report(REGISTRY, "churn", "1", "d1", "registration")  # "1" is not a prefix match of "12"
    assert not state.has_report("http://other:5000", "churn", "12", "d1", "registration")


def test_passing_history(state):
    state.save(make(version="1", verdict="pass"))
    state.save(make(version="2", verdict="warn"))
    state.save(make(version="3", verdict="fail"))
    state.save(make(version="4", verdict="pass", check="promotion", alias="champion"))
    assert state.has_passing_registration(REGISTRY, "churn", "1")
    assert state.has_passing_registration(REGISTRY, "churn", "2")
    assert not state.has_passing_registration(REGISTRY, "churn", "3")
    assert not state.has_passing_registration(REGISTRY, "churn", "4")
    assert state.has_passing_report(REGISTRY, "churn", "4")
    assert not state.has_passing_report(REGISTRY, "churn", "3")
    assert sorted(state.passed_versions(REGISTRY, "churn")) == ["1", "2"]
    assert state.passed_versions(REGISTRY, "fraud") == []


def test_unnotified_and_mark_notified(state):
    failing = make(version="1", verdict="fail")
    warning = make(version="2", verdict="warn")
    state.save(failing)
    state.save(warning)
    state.save(make(version="3", verdict="pass"))
    assert [r["report_id"] for r in state.unnotified()] == [failing["report_id"], warning["report_id"]]
    assert [r["report_id"] for r in state.unnotified(limit=1)] == [failing["report_id"]]
    state.mark_notified(failing["report_id"])
    assert [r["report_id"] for r in state.unnotified()] == [warning["report_id"]]
    assert state.save(failing) is False  # a duplicate delivery does not make it pending again
    assert [r["report_id"] for r in state.unnotified()] == [warning["report_id"]]


def test_holders_and_previous_holder(state):
    assert state.previous_holder(REGISTRY, "churn", "alias:champion", "2") is None
    state.record_holders(REGISTRY, "churn", {"alias:champion": "1", "stage:Production": "1"})
    state.record_holders(REGISTRY, "churn", {"alias:champion": "1"})  # unchanged: not recorded again
    state.record_holders(REGISTRY, "churn", {"alias:champion": "2"})
    assert state.previous_holder(REGISTRY, "churn", "alias:champion", "2") == "1"
    assert state.previous_holder(REGISTRY, "churn", "alias:champion", "3") == "2"
    assert state.previous_holder(REGISTRY, "churn", "stage:Production", "2") == "1"
    assert state.previous_holder(REGISTRY, "other", "alias:champion", "2") is None


def test_watermark_is_monotonic(state):
    assert state.watermark(REGISTRY) is None
    state.set_watermark(REGISTRY, 1_700_000_000_000)
    state.set_watermark(REGISTRY, 1_600_000_000_000)
    assert state.watermark(REGISTRY) == 1_700_000_000_000
    state.set_watermark(REGISTRY, 1_800_000_000_000)
    assert state.watermark(REGISTRY) == 1_800_000_000_000
    assert state.watermark("http://other:5000") is None


def test_watermark_never_moves_backwards_with_concurrent_writers(state):
    """Two sweeps racing, each with its own (ascending, then stale) values: the largest wins."""
    values = [[1_700_000_000_000 + i * 7 for i in range(25)], [1_700_000_000_000 + i * 5 for i in range(40)]]
    values[1].reverse()  # one writer goes down from its largest value
    barrier = threading.Barrier(2)
    errors = []

    def writer(vals):
        barrier.wait()
        try:
            for v in vals:
                state.set_watermark(REGISTRY, v)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert state.watermark(REGISTRY) == max(max(v) for v in values)


def test_table_watermark_lost_update_is_retried_on_etag_conflict(azurite):
    """Two stores (two instances) on one table: a write based on a stale read is refused by the
    ETag (HTTP 412) and re-read, so the newer value survives."""
    name = f"etag{secrets.token_hex(6)}"
    a = TableStateStore(TableClient.from_connection_string(azurite.connection_string, name))
    b = TableStateStore(TableClient.from_connection_string(azurite.connection_string, name))
    a.set_watermark(REGISTRY, 100)
    stale = a.table.get_entity("w", key(REGISTRY))
    b.set_watermark(REGISTRY, 300)
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError
    from azure.data.tables import UpdateMode

    with pytest.raises(ResourceModifiedError):
        a.table.update_entity({"PartitionKey": "w", "RowKey": key(REGISTRY), "value": 200}, mode=UpdateMode.REPLACE,
                              etag=stale.metadata["etag"], match_condition=MatchConditions.IfNotModified)
    a.set_watermark(REGISTRY, 200)
    assert a.watermark(REGISTRY) == b.watermark(REGISTRY) == 300


def test_large_report_round_trips(state):
    """A report far above the 64 KiB property limit (random text: gzip cannot shrink it below)."""
    report = make(verdict="fail")
    report["findings"] = [{**report["findings"][0], "message": secrets.token_urlsafe(20_000)} for _ in range(15)]
    assert state.save(report) is True
    assert state.get(report["report_id"]) == report
    assert state.query(model="churn")[0] == report
    assert state.reports_for_event("mlflow", "model_version.created", report["trigger"]["event_id"]) == [report]


def test_keys_with_reserved_characters(state):
    """Table keys refuse / \\ # ? and control characters: model names and registries with them work."""
    registry = "databricks-uc://profile/path?x#y"
    report = make(model="cat.schema/model#1?\\x", version="3", registry=registry, event_id="a/b#c?d")
    assert state.save(report)
    assert state.has_report(registry, "cat.schema/model#1?\\x", "3", "d1", "registration")
    assert state.reports_for_event("mlflow", "model_version.created", "a/b#c?d") == [report]
    state.record_holders(registry, "cat.schema/model#1?\\x", {"alias:a/b": "1"})
    assert state.previous_holder(registry, "cat.schema/model#1?\\x", "alias:a/b", "2") == "1"


def test_table_missing_is_a_configuration_error_never_empty_history(azurite):
    """A table deleted (or never provisioned) is not 'no history': that would be a false GOV-006."""
    from shared.errors import ConfigurationError

    table = TableClient.from_connection_string(azurite.connection_string, f"gone{secrets.token_hex(6)}")
    state = TableStateStore(table)
    table.delete_table()
    for call in (lambda: state.has_passing_registration(REGISTRY, "churn", "1"), lambda: state.watermark(REGISTRY),
                 lambda: state.get("x"), lambda: state.reports_for_event("mlflow", "t", "e")):
        with pytest.raises(ConfigurationError, match="state table does not exist"):
            call()


def test_pending_checks_are_due_in_order_replaced_and_cleared(state):
    """What reconcile comes back to: versions that stayed unavailable, reports with EVD-008."""
    registry = "http://registry.example:5000"
    state.set_pending(registry, "m\x1f1\x1f", {"kind": "unavailable", "attempts": 1}, 2_000)
    state.set_pending(registry, "m\x1f2\x1fchampion", {"kind": "unreadable"}, 1_000)
    state.set_pending(registry, "m/x#?\x1f3\x1f", {"kind": "unavailable"}, 9_000)
    state.set_pending("http://other:5000", "m\x1f1\x1f", {"kind": "unreadable"}, 0)
    assert state.due_pending(registry, 500) == []
    assert state.due_pending(registry, 2_000) == [("m\x1f2\x1fchampion", {"kind": "unreadable"}),
                                                  ("m\x1f1\x1f", {"kind": "unavailable", "attempts": 1})]
    state.set_pending(registry, "m\x1f1\x1f", {"kind": "unavailable", "attempts": 2}, 5_000)  # replaced
    assert state.get_pending(registry, "m\x1f1\x1f") == {"kind": "unavailable", "attempts": 2}
    assert [k for k, _ in state.due_pending(registry, 10_000)] == ["m\x1f2\x1fchampion", "m\x1f1\x1f", "m/x#?\x1f3\x1f"]
    state.clear_pending(registry, "m\x1f2\x1fchampion")
    state.clear_pending(registry, "never-there")  # nothing to clear: no error
    assert state.get_pending(registry, "m\x1f2\x1fchampion") is None
    assert [k for k, _ in state.due_pending(registry, 10_000)] == ["m\x1f1\x1f", "m/x#?\x1f3\x1f"]


def test_a_lease_is_held_until_it_expires_or_is_released(state):
    assert state.claim("intake|mlflow|created|ev-1", "a", until_ms=2_000, now_ms=1_000) is True
    assert state.claim("intake|mlflow|created|ev-1", "b", until_ms=3_000, now_ms=1_500) is False  # held by a
    assert state.claim("intake|mlflow|created|ev-1", "a", until_ms=3_000, now_ms=1_500) is True  # a renews
    assert state.claim("intake|mlflow|created|ev-2", "b", until_ms=3_000, now_ms=1_500) is True  # another event
    state.release("intake|mlflow|created|ev-1", "b")  # not b's: left alone
    assert state.claim("intake|mlflow|created|ev-1", "b", until_ms=4_000, now_ms=2_000) is False
    assert state.claim("intake|mlflow|created|ev-1", "b", until_ms=5_000, now_ms=3_000) is True  # a's expired
    state.release("intake|mlflow|created|ev-1", "b")
    assert state.claim("intake|mlflow|created|ev-1", "c", until_ms=6_000, now_ms=3_100) is True


def test_one_of_many_concurrent_claimants_gets_the_lease(state):
    won: list[str] = []
    barrier = threading.Barrier(8)

    def claim(owner: str) -> None:
        barrier.wait()
        if state.claim("intake|race", owner, until_ms=10_000, now_ms=1_000):
            won.append(owner)

    threads = [threading.Thread(target=claim, args=(f"o{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1, won
