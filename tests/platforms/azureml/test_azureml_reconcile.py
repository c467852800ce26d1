"""Reconcile on Azure ML: the model assets are the listing; versions registered while nothing
listened get registration reports, and a stage change (Event Grid has no stage events) is found
and checked as a promotion."""

from __future__ import annotations

from shared.engine import Engine
from shared.policy import load_policy
from shared.reconcile import OVERLAP_MS, reconcile_registry
from shared.services import Services


def test_reconcile_finds_new_versions_and_stage_changes(kit, workspace, store):
    v1 = kit.model_version("aml-reconcile", version_tags={"owner": "team-churn", "approved_by": "rita"})
    v2 = kit.model_version("aml-reconcile", version_tags={"owner": "team-churn", "approved_by": "rita"})
    workspace.set_stage("aml-reconcile", v1.version, "Production")
    services = Services(engine=Engine(load_policy(), store))
    first = reconcile_registry(workspace.tracking_uri, services, model="aml-reconcile", rate=0)
    assert not first.unavailable, first.unavailable
    registrations = sorted(r["version"] for r in first.reports if r["check"] == "registration")
    assert registrations == sorted([v1.version, v2.version])
    assert [(r["version"], r["stage"]) for r in first.reports if r["check"] == "promotion"] \
        == [(v1.version, "Production")]

    # Named by its resource id (as in EVIDENCE_GATE_REGISTRIES): the same registry, the same history.
    again = reconcile_registry(workspace.resource_id, services, model="aml-reconcile", rate=0)
    assert again.registry == first.registry and (again.checked, again.promotions, again.already) == (0, 0, 2)

    workspace.set_stage("aml-reconcile", v2.version, "Production")  # promoted in studio: no event
    second = reconcile_registry(workspace.tracking_uri, services, model="aml-reconcile", rate=0)
    assert not [r for r in second.reports if r["check"] == "registration"]
    promotions = [r for r in second.reports if r["check"] == "promotion"]
    assert [(r["version"], r["stage"]) for r in promotions] == [(v2.version, "Production")]


def test_a_quiet_sweep_lists_each_model_once_and_reads_no_version(kit, aml_env, workspace, store):
    """Azure ML has no documented change signal (the version listing's ``$orderBy`` has no
    documented values; a stage change modifies the version, not its model), so a sweep lists the
    versions of every model: with nothing changed, the model containers twice (for the versions and
    for the changed models) and one version listing per model, and nothing per version."""
    kit.model_version("aml-quiet", version_tags={"owner": "team-churn", "approved_by": "rita"})
    services = Services(engine=Engine(load_policy(), store))
    first = reconcile_registry(workspace.tracking_uri, services, rate=0)
    # (the session workspace holds other tests' models: a version of theirs may be waiting for its run)
    assert not [item for item in first.unavailable if item.startswith("aml-quiet ")], first.unavailable
    # later, past the overlap window: nothing changed since the watermark
    store.set_watermark(first.registry, first.watermark_after + OVERLAP_MS + 1)
    models = len(workspace.mlflow_json("registered-models/search", max_results=1000)["registered_models"])
    aml_env.reset()
    quiet = reconcile_registry(workspace.tracking_uri, services, rate=0)
    assert (quiet.listed, quiet.checked, quiet.promotions, quiet.reports) == (0, 0, 0, [])
    assert aml_env.kinds() == {"arm models": 2, "arm model versions": models}, aml_env.kinds()
