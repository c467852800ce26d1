"""A check from an already-fetched version record (the reconcile sweep's listing) gives the same
report as a fresh check, one registry request fewer; and what an open-source server's listing
leaves out (the aliases), which is why reconcile fetches alias holders again."""

from __future__ import annotations

import pytest

from shared.evidence.registry import RegistryClient
from shared.report import Trigger
from tests.engine.conftest import set_version_columns

TRIGGER = Trigger("reconcile", "registration", "reuse-test")
SHAPES = {
    "mlflow3": {},
    "no_run_id": {"style": "mlflow3_no_run_id"},
    "runs_uri": {"style": "runs_uri"},
    "artifact_path": {"style": "artifact_path"},
    "orphan": {"style": "orphan"},
    "no_owner_tag": {"version_tags": {}},  # a required tag missing: the registered model is fetched too
    "no_git": {"git_commit": None},
}


@pytest.fixture(scope="module")
def reuse_versions(kit, mlflow_server):
    out = {shape: kit.model_version("reuse-shapes", **kwargs) for shape, kwargs in SHAPES.items()}
    out["failed_registration"] = kit.model_version("reuse-shapes")
    set_version_columns(mlflow_server, "reuse-shapes", out["failed_registration"].version,
                        status="FAILED_REGISTRATION", status_message="copy of artifacts failed")
    return out


def listed(registry: str, model: str) -> dict:
    page, _ = RegistryClient(registry).search_model_versions(f"name='{model}'")
    return {mv.version: mv for mv, _ in page}


@pytest.mark.parametrize("shape", [*SHAPES, "failed_registration"])
def test_check_from_the_listed_record_equals_a_fresh_check(engine, registry, reuse_versions, shape):
    trained = reuse_versions[shape]
    fresh = engine.check_version(registry, trained.model, trained.version, trigger=TRIGGER)
    record = listed(registry, trained.model)[trained.version]
    reused = engine.check_version(registry, trained.model, trained.version, trigger=TRIGGER, version_evidence=record)
    assert reused["evidence_digest"] == fresh["evidence_digest"]
    assert reused["report_id"] == fresh["report_id"]
    assert reused["registry_requests"] == fresh["registry_requests"] - 1
    ignore = ("registry_requests", "generated_at")
    assert {k: v for k, v in reused.items() if k not in ignore} == {k: v for k, v in fresh.items() if k not in ignore}


def test_a_record_of_another_version_is_refused(engine, registry, reuse_versions):
    a, b = reuse_versions["mlflow3"], reuse_versions["no_git"]
    record = listed(registry, a.model)[a.version]
    with pytest.raises(ValueError):
        engine.check_version(registry, b.model, b.version, trigger=TRIGGER, version_evidence=record)


def test_an_open_source_listing_leaves_the_aliases_out(kit, registry):
    trained = kit.model_version("reuse-alias")
    kit.client.set_registered_model_alias("reuse-alias", "champion", trained.version)
    client = RegistryClient(registry)
    record = listed(registry, "reuse-alias")[trained.version]
    fetched = client.get_model_version("reuse-alias", trained.version)
    assert fetched.aliases == ["champion"] and record.aliases == []
    assert {**vars(record), "aliases": fetched.aliases} == vars(fetched)  # and nothing else
