"""The engine's scenarios (tests/engine/conftest.py) through the local Azure ML give the verdicts
they give on open-source MLflow; Azure ML's own shapes (job inputs, git properties, UPNs, stages)
are evidence."""

from __future__ import annotations

import pytest

from shared.engine import Engine
from shared.evidence.registry import RegistryClient
from shared.policy import load_policy
from shared.report import Trigger
from tests.engine.conftest import rule_ids

# Azure ML model assets have no registration status: a version still PENDING_REGISTRATION or
# FAILED_REGISTRATION in MLflow is no asset at all (tests below), so those two are not compared.
# A version registered from local files (no run) lives on the workspace's blob datastore, which
# is not read through the run artifact service (tested below).
COMPARED = ["clean", "failed_run", "deleted_run", "missing_run", "cred_param", "cred_file", "no_signature", "no_env",
            "no_git", "no_dataset", "no_owner", "notebook", "metrics", "no_run_id", "artifact_path", "runs_uri", "stale"]


@pytest.fixture()
def aml_engine(store, aml_env):
    return Engine(load_policy(), store)


def registration(engine: Engine, registry: str, trained) -> dict:
    return engine.check_version(registry, trained.model, trained.version, trigger=Trigger("cli", "check"))


@pytest.mark.parametrize("name", COMPARED)
def test_registration_verdicts_match_open_source_mlflow(name, scenarios, aml_engine, registry, workspace):  # noqa: F811
    trained = scenarios[name]
    on_mlflow = registration(aml_engine, registry, trained)
    on_azureml = registration(aml_engine, workspace.tracking_uri, trained)
    assert (on_azureml["verdict"], rule_ids(on_azureml)) == (on_mlflow["verdict"], rule_ids(on_mlflow))


def test_the_workspace_resource_id_is_a_registry_too(scenarios, aml_engine, workspace):  # noqa: F811
    report = registration(aml_engine, workspace.resource_id, scenarios["clean"])
    assert report["verdict"] == "pass", report["findings"]
    assert RegistryClient(workspace.resource_id).backend == "azureml"
