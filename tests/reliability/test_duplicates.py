"""At least once in, exactly one report out: one event delivered 20 times (some concurrently)
gives one report and one Service Bus message id; 50 concurrent deliveries of different events
(MLflow, Databricks, Event Grid) lose or duplicate nothing in the store."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.reliability.conftest import answer


def test_one_event_delivered_twenty_times_gives_one_report_and_one_message_id(app, cheap_versions):
    (v,) = cheap_versions(f"rel-dup-{uuid.uuid4().hex[:6]}", 1)
    delivery = f"dup-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(8) as pool:  # 8 at once first, then 12 more, 4 at a time
        first = list(pool.map(lambda _: answer(app.mlflow_created(v.model, v.version, delivery)), range(8)))
    with ThreadPoolExecutor(4) as pool:
        rest = list(pool.map(lambda _: answer(app.mlflow_created(v.model, v.version, delivery)), range(12)))
    answers = first + rest
    assert {status for status, _ in answers} == {200}
    report_ids = {body["reports"][0]["report_id"] for _, body in answers}
    assert len(report_ids) == 1, report_ids
    assert sum(body["stored"] for _, body in answers) == 1
    assert [r["report_id"] for r in app.reports(model=v.model)] == list(report_ids)
    assert set(app.message_ids()) == report_ids  # Service Bus duplicate detection keys on it


def test_fifty_concurrent_deliveries_of_different_events_lose_and_duplicate_nothing(app, cheap_versions):
    name = f"rel-load-{uuid.uuid4().hex[:6]}"
    versions = cheap_versions(name, 50)
    calls = []
    for i, v in enumerate(versions):
        if i % 5 == 3:
            calls.append(lambda v=v: ("databricks", answer(app.databricks_created(v.model, v.version))))
        elif i % 5 == 4:
            calls.append(lambda v=v: ("eventgrid", app.eventgrid_registered(v.model, v.version)))
        else:
            calls.append(lambda v=v: ("mlflow", answer(app.mlflow_created(v.model, v.version))))
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda call: call(), calls))
    for source, result in results:
        if source != "eventgrid":
            status, body = result
            assert status == 200 and body["stored"] == 1, body
    reports = app.reports(model=name)
    assert sorted(int(r["subject"]["version"]) for r in reports) == sorted(int(v.version) for v in versions)
    assert len({r["report_id"] for r in reports}) == 50 == app.store.count()
    assert sorted(app.message_ids()) == sorted(r["report_id"] for r in reports)
    assert {r["trigger"]["source"] for r in reports} == {"mlflow", "databricks-registry", "azureml"}
