"""Reconcile on Azure ML: the model assets are the listing; versions registered while nothing
listened get registration reports, and a stage change (Event Grid has no stage events) is found
and checked as a promotion."""

from __future__ import annotations

from shared.engine import Engine
from shared.policy import load_policy
from shared.reconcile import reconcile_registry
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

    workspace.set_stage("aml-reconcile", v2.version, "Production")  # promoted in studio: no event
    second = reconcile_registry(workspace.tracking_uri, services, model="aml-reconcile", rate=0)
    assert not [r for r in second.reports if r["check"] == "registration"]
    promotions = [r for r in second.reports if r["check"] == "promotion"]
    assert [(r["version"], r["stage"]) for r in promotions] == [(v2.version, "Production")]
