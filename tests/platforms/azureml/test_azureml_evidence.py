"""Evidence as Azure ML records it: job inputs are training data lineage, job git properties are the
code version, a submitted job is never interactive, the job's creator (a UPN) is an author for
GOV-002, the model asset's stage is the version's stage."""

from __future__ import annotations

import pytest

from shared.engine import Engine
from shared.evidence.model import DatasetRef
from shared.evidence.registry import RegistryClient
from shared.policy import load_policy
from shared.report import Trigger
from tests.engine.conftest import rule_ids
from tests.support.kit import GIT_COMMIT

DATA_ASSET = {"jobInputType": "uri_folder", "uri": "azureml:churn-train:3", "mode": "ReadOnlyMount"}
DATA_URI = {"jobInputType": "uri_file", "uri": "azureml://datastores/workspaceblobstore/paths/churn/holdout.csv",
            "mode": "Download"}
LITERAL = {"jobInputType": "literal", "value": "0.1"}


@pytest.fixture()
def engine(store, aml_env):
    return Engine(load_policy(), store)


def check(engine: Engine, registry: str, trained, **kwargs) -> dict:
    return engine.check_version(registry, trained.model, trained.version, trigger=Trigger("cli", "check"), **kwargs)


def test_a_command_job_with_a_data_asset_input_and_no_log_input_has_lineage(kit, engine, registry, workspace):
    trained = kit.model_version("aml-job-inputs", dataset=False)
    workspace.set_job(trained.run_id, inputs={"training_data": DATA_ASSET, "holdout": DATA_URI, "learning_rate": LITERAL},
                      properties={"azureml.git.commit": GIT_COMMIT})
    assert "LIN-005" in rule_ids(check(engine, registry, trained))  # open-source MLflow: no dataset input
    report = check(engine, workspace.tracking_uri, trained)
    assert "LIN-005" not in rule_ids(report) and report["verdict"] == "pass", report["findings"]
    run = RegistryClient(workspace.tracking_uri).get_run(trained.run_id)
    assert sorted(run.datasets, key=lambda d: d.name) == [
        DatasetRef("churn-train", "3", "azureml:churn-train:3", "job_input"),
        DatasetRef("holdout", "", DATA_URI["uri"], "job_input"),
    ]


def test_the_code_version_is_the_job_git_property_when_the_client_tags_are_dropped(kit, engine, workspace):
    trained = kit.model_version("aml-git-property", git_commit=None)
    workspace.set_job(trained.run_id, properties={"mlflow.source.git.commit": GIT_COMMIT})
    run = RegistryClient(workspace.tracking_uri).get_run(trained.run_id)
    assert run.code_version == GIT_COMMIT and "mlflow.source.git.commit" not in run.tags
    assert "LIN-004" not in rule_ids(check(engine, workspace.tracking_uri, trained))
    workspace.set_job(trained.run_id, properties={})
    assert "LIN-004" in rule_ids(check(engine, workspace.tracking_uri, trained))


@pytest.mark.parametrize("job_type", ["Command", "Sweep", "Pipeline"])
def test_a_submitted_job_is_never_interactive(kit, engine, workspace, job_type):
    trained = kit.model_version(f"aml-{job_type.lower()}-job", source_type="LOCAL")
    workspace.set_job(trained.run_id, job_type=job_type, properties={"azureml.git.commit": GIT_COMMIT})
    run = RegistryClient(workspace.tracking_uri).get_run(trained.run_id)
    assert run.launched_by_job is True
    assert "LIN-006" not in rule_ids(check(engine, workspace.tracking_uri, trained, stage="Production"))


def test_a_run_without_a_job_is_an_interactive_session(kit, workspace):
    trained = kit.model_version("aml-notebook", source_type="NOTEBOOK")
    run = RegistryClient(workspace.tracking_uri).get_run(trained.run_id)
    assert run.launched_by_job is False and run.source_type == "NOTEBOOK"


def test_self_approval_is_found_through_the_job_creator_upn(kit, engine, registry, workspace):
    trained = kit.model_version("aml-self-approved", user="Carol Smith",
                                version_tags={"owner": "team-churn", "approved_by": "carol@contoso.com"})
    workspace.set_job(trained.run_id, created_by="carol@contoso.com", properties={"azureml.git.commit": GIT_COMMIT})
    assert "GOV-002" not in rule_ids(check(engine, registry, trained, stage="Production"))  # a display name only
    report = check(engine, workspace.tracking_uri, trained, stage="Production")
    gov = [f for f in report["findings"] if f["rule_id"] == "GOV-002"]
    assert gov and "carol@contoso.com" in gov[0]["message"]


def test_the_model_asset_stage_is_the_version_stage_and_the_previous_production_holder(kit, engine, workspace):
    first = kit.model_version("aml-staged", metrics={"accuracy": 0.95, "auc": 0.96})
    second = kit.model_version("aml-staged", version_tags={"owner": "team-churn", "approved_by": "rita"},
                               metrics={"accuracy": 0.80, "auc": 0.81})
    workspace.set_stage("aml-staged", first.version, "Production")
    client = RegistryClient(workspace.tracking_uri)
    assert client.get_model_version("aml-staged", first.version).stage == "Production"
    assert client.get_model_version("aml-staged", second.version).stage == "Development"
    assert client.get_registered_model("aml-staged").latest_versions == {"Production": first.version,
                                                                          "Development": second.version}
    report = check(engine, workspace.tracking_uri, second, stage="Production")
    assert "GOV-003" in rule_ids(report)  # regresses against the Production holder


def test_reconcile_listings_come_from_the_model_assets(kit, workspace):
    trained = kit.model_version("aml-listed")
    client = RegistryClient(workspace.tracking_uri)
    page, token = client.search_model_versions("name='aml-listed'")
    assert [(mv.name, mv.version, mv.run_id) for mv, _ in page] == [("aml-listed", trained.version, trained.run_id)]
    assert token is None
    names, _ = client.search_registered_models()
    assert "aml-listed" in [name for name, _ in names]


def test_the_model_tags_are_the_models_own_not_its_newest_versions(kit, engine, workspace):
    """An ``owner`` set on the model (MLflow's registered-model tags, the model container's tags in
    Azure ML) satisfies EVD-007 for a version without it; a version's tags stay the version's."""
    trained = kit.model_version("aml-model-owner", version_tags={"approved_by": "rita"},
                                model_tags={"owner": "team-churn"})
    model = RegistryClient(workspace.tracking_uri).get_registered_model(trained.model)
    assert model.tags == {"owner": "team-churn"}
    report = check(engine, workspace.tracking_uri, trained)
    assert "EVD-007" not in rule_ids(report) and report["verdict"] == "pass", report["findings"]
