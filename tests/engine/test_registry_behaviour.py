"""Registry requests counted at the server, and outages that must never become findings."""

from __future__ import annotations

import pytest

from shared.errors import RegistryUnavailable, SubjectNotFound, VersionNotReady
from shared.report import Trigger
from tests.support.proxy import Fault, api_class


def test_registration_check_of_a_normal_mlflow3_model_makes_at_most_6_requests(scenarios, check, proxy):
    proxy.reset()
    report = check(scenarios["clean"])
    assert proxy.count() <= 6, proxy.requests
    assert report["registry_requests"] == proxy.count()


def test_promotion_check_of_a_normal_mlflow3_model_makes_at_most_9_requests(scenarios, check, proxy, store):
    store.save(check(scenarios["approved"]))
    proxy.reset()
    report = check(scenarios["approved"], alias="champion")
    assert report["check"] == "promotion"
    assert proxy.count() <= 9, proxy.requests
    assert report["findings"] == [] or report["verdict"] == "pass"


@pytest.mark.parametrize("fault", [
    Fault(status=503),
    Fault(status=429, retry_after=0),
    Fault(status=500),
    Fault(reset=True),
], ids=["503", "429", "500", "reset"])
def test_an_unavailable_registry_raises_and_never_reports(fault, scenarios, check, proxy, store):
    proxy.reset()
    proxy.always = fault
    try:
        with pytest.raises(RegistryUnavailable):
            check(scenarios["clean"])
    finally:
        proxy.always = None
    assert store.count() == 0


def test_a_fault_midway_through_the_check_is_still_transient(scenarios, check, proxy, store):
    """The version fetch succeeds, then the registry fails: no 'run missing' finding, no report."""
    proxy.reset()
    proxy.faults.append(None)  # the first request is forwarded
    proxy.always = Fault(status=503)
    try:
        with pytest.raises(RegistryUnavailable):
            check(scenarios["clean"])
    finally:
        proxy.always = None
    assert proxy.requests[0][1].startswith("/api/2.0/mlflow/model-versions/get")
    assert store.count() == 0


def test_transient_faults_within_the_retry_budget_are_absorbed(scenarios, check, proxy):
    proxy.reset()
    proxy.faults.extend([Fault(status=503), Fault(status=429, retry_after=1)])
    report = check(scenarios["clean"])
    assert report["verdict"] == "pass"
    assert proxy.count() >= 8  # two refused attempts were retried


def test_pending_registration_is_not_ready(scenarios, check):
    with pytest.raises(VersionNotReady):
        check(scenarios["pending"])


def test_unknown_model_and_version(check):
    from tests.support.kit import Trained

    with pytest.raises(SubjectNotFound):
        check(Trained("no-such-model", "1", None))


def test_unknown_version_of_a_known_model(scenarios, check):
    from tests.support.kit import Trained

    with pytest.raises(SubjectNotFound):
        check(Trained(scenarios["clean"].model, "999", None))


def test_report_id_is_stable_for_the_same_event(scenarios, engine, registry):
    trigger = Trigger("mlflow", "model_version.created", "delivery-1")
    a = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version, trigger=trigger)
    b = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version, trigger=trigger)
    assert a["report_id"] == b["report_id"]
    other = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version,
                                 trigger=Trigger("reconcile", "sweep"))
    assert other["report_id"] != a["report_id"]


def test_registration_report_id_is_stable_after_its_report_is_stored(scenarios, engine, registry, store):
    """A redelivered registration event after the first report was saved yields the same report."""
    trigger = Trigger("mlflow", "model_version.created", "delivery-2")
    first = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version, trigger=trigger)
    assert store.save(first)
    again = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version, trigger=trigger)
    assert again["report_id"] == first["report_id"]
    assert not store.save(again)


def test_two_different_events_about_the_same_version_get_two_reports(scenarios, engine, registry):
    a = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version,
                             trigger=Trigger("azureml", "ModelRegistered", "event-a"))
    b = engine.check_version(registry, scenarios["clean"].model, scenarios["clean"].version,
                             trigger=Trigger("azureml", "ModelRegistered", "event-b"))
    assert a["report_id"] != b["report_id"]


def test_every_request_is_announced_with_its_api_class(scenarios, engine, registry, proxy, store):
    """The rate limiter is told each request's class before it is made; the classes match the
    requests the server actually received (registration and promotion checks, run search)."""
    import dataclasses

    from shared.evidence.registry import RegistryClient

    announced = []
    limited = dataclasses.replace(engine, client_factory=lambda uri: RegistryClient(uri, before_request=announced.append))
    store.save(limited.check_version(registry, scenarios["approved"].model, scenarios["approved"].version,
                                     trigger=Trigger("cli", "check")))
    proxy.reset()
    announced.clear()
    limited.check_version(registry, scenarios["approved"].model, scenarios["approved"].version, alias="champion",
                          trigger=Trigger("cli", "check"))
    RegistryClient(registry, before_request=announced.append).search_runs_by_tag("mlflow.source.type", "JOB")
    received = [api_class(path) for _, path in proxy.requests]
    assert sorted(announced) == sorted(received)
    assert {"registry", "tracking", "search"} <= set(announced)
