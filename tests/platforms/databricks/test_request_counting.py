"""The rate limiter and the report's request count see every HTTP request databricks-sdk sends to
the workspace, not one per logical call: a Unity Catalog model read is 2 requests, a full UC
listing 1 + one per model, a 429 retried by the SDK one more each time. Each figure is the
local workspace's own request log compared with what the client was told."""

from __future__ import annotations

import dataclasses
from collections import Counter

from shared.engine import Engine
from shared.evidence.registry import RegistryClient
from shared.policy import load_policy
from shared.reconcile import RateLimiter, reconcile_registry
from shared.report import Trigger
from shared.services import Services
from tests.support.proxy import api_class


def _received(workspace) -> list[str]:
    """The API class of each request the workspace received (OAuth and host metadata are not APIs)."""
    return [api_class(path) for _, path in workspace.requests if path.startswith("/api/")]


def test_a_unity_catalog_model_read_is_two_requests_and_both_are_announced(workspace, scenarios):
    announced: list[str] = []
    client = RegistryClient("databricks-uc", before_request=announced.append)
    model = client.get_registered_model(workspace.uc_name("churn-promo"))
    assert model.owner  # the second request: the UC API's owner field
    assert announced == _received(workspace) == ["registry", "registry"]
    assert client.requests == 2


def test_a_full_unity_catalog_listing_announces_the_model_listing_and_each_models_versions(workspace, scenarios):
    announced: list[str] = []
    client = RegistryClient("databricks-uc", before_request=announced.append)
    page, _ = client.search_model_versions()
    models = {mv.name for mv, _ in page}
    assert len(models) >= 5
    assert workspace.count("/api/2.1/unity-catalog/models") >= 1
    assert workspace.count("/unity-catalog/model-versions/search") >= len(models)
    assert len(announced) == len(_received(workspace)) == client.requests
    assert len(announced) >= 1 + len(models)


def test_the_sdks_retries_of_a_429_are_announced_one_by_one(workspace, scenarios):
    trained = scenarios["clean"]
    workspace.fail("/unity-catalog/model-versions/get", status=429, retry_after=1, times=2)
    announced: list[str] = []
    client = RegistryClient("databricks-uc", before_request=announced.append)
    mv = client.get_model_version(workspace.uc_name(trained.model), trained.version)
    assert mv.run_id == trained.run_id
    assert workspace.count("/unity-catalog/model-versions/get") == 3  # two 429s, then the answer
    assert announced == ["registry"] * 3 and client.requests == 3


def test_a_check_announces_each_request_with_the_class_the_workspace_counts(workspace, scenarios, store):
    trained = scenarios["clean"]
    announced: list[str] = []
    engine = dataclasses.replace(Engine(load_policy(), store),
                                 client_factory=lambda uri: RegistryClient(uri, before_request=announced.append))
    for registry, name in (("databricks-uc", workspace.uc_name(trained.model)), ("databricks", trained.model)):
        workspace.reset()
        announced.clear()
        report = engine.check_version(registry, name, trained.version, trigger=Trigger("cli", "check"))
        assert announced == _received(workspace), registry
        assert report["registry_requests"] == len(announced)
        assert "/api/2.0/fs/create-download-url" not in {p.split("?")[0] for _, p in workspace.requests}


class CountingLimiter(RateLimiter):
    """No limit; counts what the sweep asked of it, by class."""

    def __init__(self):
        super().__init__({})
        self.acquired: Counter[str] = Counter()

    def acquire(self, api: str) -> None:
        self.acquired[api] += 1

    def describe(self) -> str:
        return "counted, no limit"


def test_a_reconcile_sweeps_limiter_counts_the_requests_the_workspace_received(workspace, scenarios, store):
    limiter = CountingLimiter()
    summary = reconcile_registry("databricks-uc", Services(engine=Engine(load_policy(), store)), rate=limiter,
                                 model=workspace.uc_name("churn-promo"))
    assert summary.listed >= 3 and summary.checked == summary.listed
    assert limiter.acquired == Counter(_received(workspace))
