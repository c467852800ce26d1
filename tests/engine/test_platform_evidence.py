"""Rules read what the platform itself records (filled by the Databricks and Azure ML backends):
a job's code version, a job launch, other author identities, the native owner field, an approved
transition request. Evidence built by hand: no registry needed."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.evidence.model import Approval, Evidence, Promotion, RegisteredModelEvidence, RunEvidence, VersionEvidence
from shared.policy import load_policy
from shared.rules import catalog
from shared.rules.base import CheckContext


def _fires(rule_id: str, evidence: Evidence, check: str = "registration") -> bool:
    rule = catalog()[rule_id]
    ctx = CheckContext(check, evidence, load_policy().for_model("m"), datetime(2026, 12, 1, tzinfo=UTC))
    return bool(list(rule.evaluate(ctx, dict(rule.params))))


def _evidence(run: RunEvidence | None = None, **version) -> Evidence:
    mv = VersionEvidence(name="m", version="1", status="READY", run_id="r1", **version)
    return Evidence(registry="http://r", version=mv, run=run or RunEvidence(run_id="r1", status="FINISHED"),
                    registered_model=RegisteredModelEvidence(name="m"))


def test_lin_004_accepts_the_platforms_code_version():
    assert _fires("LIN-004", _evidence())
    assert not _fires("LIN-004", _evidence(RunEvidence(run_id="r1", code_version="3f2a9c1")))


def test_lin_006_a_job_launch_is_never_interactive():
    notebook = {"mlflow.source.type": "NOTEBOOK"}
    assert _fires("LIN-006", _evidence(RunEvidence(run_id="r1", tags=notebook)))
    assert not _fires("LIN-006", _evidence(RunEvidence(run_id="r1", tags=notebook, launched_by_job=True)))


def test_evd_007_the_native_owner_field_is_the_owner():
    assert _fires("EVD-007", _evidence())
    assert not _fires("EVD-007", _evidence(owner="ml-team@contoso.com"))
    ev = _evidence()
    ev.registered_model.owner = "ml-team"
    assert not _fires("EVD-007", ev)


def _promotion(ev: Evidence, *approvals: Approval) -> Evidence:
    ev.promotion = Promotion(stage="Production", approvals=list(approvals))
    return ev


def test_gov_001_an_approved_transition_request_is_an_approval():
    assert _fires("GOV-001", _promotion(_evidence()), "promotion")
    approved = _promotion(_evidence(), Approval("rm@contoso.com", "transition_request"))
    assert not _fires("GOV-001", approved, "promotion")


def test_gov_002_sees_every_identity_of_the_author_and_every_approver():
    run = RunEvidence(run_id="r1", user="Alice Example", user_ids=["alice@contoso.com", "0b5e-oid"])
    self_approved = _promotion(_evidence(run), Approval("alice@contoso.com", "transition_request"))
    assert _fires("GOV-002", self_approved, "promotion")
    other = _promotion(_evidence(run), Approval("bob@contoso.com", "transition_request"))
    assert not _fires("GOV-002", other, "promotion")
    by_registrar = _promotion(_evidence(user_ids=["carol@contoso.com"]), Approval("carol@contoso.com", "transition_request"))
    assert _fires("GOV-002", by_registrar, "promotion")
