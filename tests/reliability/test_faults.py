"""Fault injection: a real HTTP proxy in front of the real MLflow server answers 429 (with
Retry-After), 503, resets connections or adds latency. No fault ever becomes a finding; events are
answered 503 (HTTP) or raise (Event Grid) while faults last; Retry-After is honoured; once the
faults stop, every version ends with exactly its correct report (redelivery or reconcile)."""

from __future__ import annotations

import random
import uuid

import pytest

from shared.errors import RegistryUnavailable
from tests.reliability.conftest import answer
from tests.support.proxy import Fault

FAULTS = {
    "429 Retry-After": Fault(status=429, retry_after=1),
    "503": Fault(status=503),
    "connection reset": Fault(reset=True),
}


@pytest.fixture(scope="module")
def subjects(kit, cheap_versions):
    """Four versions of one model: two clean, one without code version and data lineage, one
    whose run is deleted; and the report each must end with (checked without faults)."""
    name = f"rel-faults-{uuid.uuid4().hex[:6]}"
    versions = cheap_versions(name, 2)
    versions.append(kit.model_version(name, git_commit=None, dataset=False))
    versions.append(kit.model_version(name, delete_run=True))
    return name, versions


@pytest.fixture()
def expected(app, subjects):
    """What each version's registration report says when nothing fails (no store: no history)."""
    from shared.engine import Engine
    from shared.report import Trigger

    engine = Engine(app.services.engine.policy, store=None)
    name, versions = subjects
    out = {}
    for v in versions:
        report = engine.check_version(app.registry, name, v.version, trigger=Trigger("mlflow", "model_version.created", "x"))
        out[v.version] = outcome(report)
    app.proxy.reset()
    assert len(set(out.values())) >= 3  # pass, warn (LIN-004/005) and fail (LIN-003): the outcomes differ
    return out


def outcome(report: dict) -> tuple:
    return report["verdict"], tuple(sorted((f["rule_id"], f["severity"]) for f in report["findings"]))


def registration_reports(app, name: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in app.reports(model=name):
        if r["check"] == "registration":
            out.setdefault(r["subject"]["version"], []).append(r)
    return out


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_while_faults_last_nothing_is_reported_then_every_version_gets_its_correct_report(
        app, subjects, expected, fault, fast_fail):
    from shared.reconcile import reconcile_registry

    name, versions = subjects
    app.proxy.always = FAULTS[fault]
    deliveries = {}
    for v in versions[:2]:  # MLflow webhooks: 503 with Retry-After, the sender redelivers
        deliveries[v.version] = f"d-{uuid.uuid4().hex}"
        resp = app.mlflow_created(name, v.version, deliveries[v.version])
        status, body = answer(resp)
        assert status == 503 and body["error"] == "registry_unavailable" and int(resp.headers["Retry-After"]) > 0
    status, body = answer(app.databricks_created(name, versions[2].version))  # Databricks: 503 as well
    assert status == 503 and body["error"] == "registry_unavailable"
    with pytest.raises(RegistryUnavailable):  # Event Grid: the function raises, Event Grid redelivers
        app.eventgrid_registered(name, versions[3].version)
    with pytest.raises(RegistryUnavailable):  # the sweep cannot even list the versions yet
        reconcile_registry(app.registry, app.services, model=name)
    assert app.store.count() == 0 and app.sent == []  # no report, no message, no finding

    app.proxy.always = None  # the faults stop
    for v in versions[:2]:  # the MLflow sender redelivers
        status, body = answer(app.mlflow_created(name, v.version, deliveries[v.version]))
        assert status == 200 and body["stored"] == 1
    # The Databricks and Event Grid deliveries are not redelivered here (lost): reconcile covers them.
    sweep = reconcile_registry(app.registry, app.services, model=name)
    assert sweep.complete and (sweep.checked, sweep.already) == (2, 2)
    reports = registration_reports(app, name)
    assert sorted(reports) == sorted(v.version for v in versions)
    for version, got in reports.items():
        assert len(got) == 1 and outcome(got[0]) == expected[version], version
    assert sorted(app.message_ids()) == sorted(r[0]["report_id"] for r in reports.values())


def test_intermittent_faults_and_latency_never_produce_a_false_finding(app, subjects, expected, monkeypatch):
    """Random 429/503/resets/latency on a share of the requests, with the client's own retries on
    (no back-off sleeps): each delivery is either 200 with exactly the correct report or 503."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    name, versions = subjects
    rng = random.Random(20261122)
    kinds = [Fault(status=429, retry_after=0), Fault(status=503), Fault(status=502), Fault(reset=True),
             Fault(delay=0.05)]
    pending = {v.version: f"chaos-{uuid.uuid4().hex}" for v in versions}
    answers = {200: 0, 503: 0}
    for _ in range(6):
        for version, delivery in list(pending.items()):
            app.proxy.faults.clear()
            app.proxy.faults.extend(rng.choice(kinds) if rng.random() < 0.6 else None for _ in range(40))
            status, body = answer(app.mlflow_created(name, version, delivery))
            assert status in (200, 503), body
            answers[status] += 1
            if status == 200:
                (summary,) = body["reports"]
                assert outcome(app.store.get(summary["report_id"])) == expected[version]
                del pending[version]
    app.proxy.faults.clear()
    for version, delivery in pending.items():  # whatever was still failing: redelivered after the faults
        status, body = answer(app.mlflow_created(name, version, delivery))
        assert status == 200
    assert answers[503] > 0 and answers[200] > 0  # both happened: the faults did bite
    reports = registration_reports(app, name)
    assert {v: [outcome(r) for r in rs] for v, rs in reports.items()} == {v: [o] for v, o in expected.items()}


def test_retry_after_from_the_registry_is_honoured(app, subjects, expected):
    """One 429 with Retry-After: 1 on the first registry request: the client waits what the
    registry asked, retries, and the delivery succeeds with the correct report."""
    name, versions = subjects
    app.proxy.faults.append(Fault(status=429, retry_after=1))
    status, body = answer(app.mlflow_created(name, versions[0].version))
    assert status == 200
    assert app.proxy.count() == 7  # the 6 requests of a registration check, one of them twice
    assert outcome(app.store.get(body["reports"][0]["report_id"])) == expected[versions[0].version]
