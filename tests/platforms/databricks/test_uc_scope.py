"""`EVIDENCE_GATE_UC_SCHEMAS`: which Unity Catalog schemas and catalogs a sweep lists. The local
metastore gets two more schemas, `main.fraud` and `prod.risk`, next to `main.ml` (where the
session's scenarios live); the UC API lists one schema at a time (`catalog_name` with
`schema_name`), and a catalog is expanded to its schemas first."""

from __future__ import annotations

import pytest

from shared.cli import main as cli
from shared.errors import ConfigurationError
from shared.evidence.registry import RegistryClient
from tests.platforms.databricks.workspace import CATALOG, SCHEMA

FRAUD, RISK = "main.fraud.scope-fraud", "prod.risk.scope-risk"


@pytest.fixture(scope="module")
def schemas(local_databricks, kit, scenarios):
    """Two models with two versions each in two more schemas (for the rest of the session)."""
    local_databricks.schemas |= {("main", "fraud"), ("prod", "risk")}
    run_id = scenarios["clean"].run_id
    for name in (FRAUD, RISK):
        kit.ensure_model(name)
        for _ in range(2):
            kit.client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    return local_databricks


def _listed(monkeypatch, scope: str) -> set[str]:
    monkeypatch.setenv("EVIDENCE_GATE_UC_SCHEMAS", scope)
    page, token = RegistryClient("databricks-uc").search_model_versions()
    assert token is None
    return {mv.name for mv, _ in page}


def test_a_schema_lists_only_its_models(schemas, workspace, monkeypatch):
    assert _listed(monkeypatch, "main.fraud") == {FRAUD}
    paths = [path for _, path in workspace.requests]
    assert any("catalog_name=main&schema_name=fraud" in p for p in paths if p.startswith("/api/2.1/unity-catalog/models?"))
    assert not any(p.startswith("/api/2.1/unity-catalog/models?") and "schema_name" not in p for p in paths)
    assert workspace.count("/api/2.1/unity-catalog/schemas") == 0


def test_a_catalog_lists_each_of_its_schemas(schemas, workspace, monkeypatch, scenarios):
    listed = _listed(monkeypatch, "main")
    assert FRAUD in listed and workspace.uc_name(scenarios["clean"].model) in listed
    assert all(name.startswith("main.") for name in listed)
    assert workspace.count("/api/2.1/unity-catalog/schemas?catalog_name=main") == 1
    assert workspace.count(f"catalog_name={CATALOG}&schema_name={SCHEMA}") == 1


def test_several_entries_and_the_models_listing_follow_the_setting(schemas, workspace, monkeypatch):
    assert _listed(monkeypatch, " prod.risk , main.fraud,prod.risk") == {FRAUD, RISK}
    models, _ = RegistryClient("databricks-uc").search_registered_models()
    assert {name for name, _ in models} == {FRAUD, RISK}


def test_unset_lists_every_model_the_identity_may_see(schemas, workspace, monkeypatch):
    monkeypatch.delenv("EVIDENCE_GATE_UC_SCHEMAS", raising=False)
    page, _ = RegistryClient("databricks-uc").search_model_versions()
    assert {FRAUD, RISK} <= {mv.name for mv, _ in page}


@pytest.mark.parametrize(("scope", "says"), [
    ("main.ml.churn", "'main.ml.churn' is neither a catalog nor catalog.schema"),
    ("nope", "catalog 'nope', which Unity Catalog does not have"),
    ("main.nope", "schema 'main.nope', which Unity Catalog does not have"),
])
def test_a_scope_unity_catalog_cannot_list_is_a_setting_to_fix(schemas, workspace, monkeypatch, scope, says):
    monkeypatch.setenv("EVIDENCE_GATE_UC_SCHEMAS", scope)
    with pytest.raises(ConfigurationError, match=says) as caught:
        RegistryClient("databricks-uc").search_model_versions()
    assert caught.value.exit_code == 3 and "EVIDENCE_GATE_UC_SCHEMAS" in str(caught.value)


def test_the_cli_sweep_says_which_setting_to_fix_in_one_line(schemas, workspace, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EVIDENCE_GATE_UC_SCHEMAS", "main.nope")
    monkeypatch.setenv("EVIDENCE_GATE_STORE", str(tmp_path / "reports.sqlite"))
    code = cli(["reconcile", "--tracking-uri", "databricks-uc"])
    err = capsys.readouterr().err
    assert code == 3 and "EVIDENCE_GATE_UC_SCHEMAS names schema 'main.nope'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_check_outside_the_scope_still_reads_the_model(schemas, workspace, monkeypatch):
    monkeypatch.setenv("EVIDENCE_GATE_UC_SCHEMAS", "main.fraud")
    mv = RegistryClient("databricks-uc").get_model_version(RISK, "1")
    assert (mv.name, mv.version) == (RISK, "1")
