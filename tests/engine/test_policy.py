"""Policy and waiver files: validation with clear errors, scoping, digests, waivers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.errors import PolicyError
from shared.policy import load_policy


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_builtin_default_policy():
    policy = load_policy()
    effective = policy.for_model("anything")
    assert policy.name == "default"
    assert effective.protected_aliases == ["champion", "production"]
    assert effective.approval_tag == "approved_by"
    assert effective.required_tags == ["owner"]
    assert policy.digest.startswith("sha256:")


@pytest.mark.parametrize("text, where, problem", [
    ("required_metrics: {auc: {min: high}}\n", "required_metrics.auc.min", "valid number"),
    ("rules: {LIN-099: {enabled: false}}\n", "rules", "unknown rule id 'LIN-099'"),
    ("rules: {LIN-006: {params: {nope: 1}}}\n", "rules", "has no parameter 'nope'"),
    ("rules: {LIN-006: {params: {interactive_sources: NOTEBOOK}}}\n", "rules", "must be a list"),
    ("rules: {GOV-001: {severity: fatal}}\n", "rules.GOV-001.severity", "'error', 'warning' or 'info'"),
    ("protected_alias: [champion]\n", "protected_alias", "unknown key"),
    ("scopes: [{name: credit}]\n", "scopes.0.models", "Field required"),
    ("max_run_age_days: 0\n", "max_run_age_days", "greater than or equal to 1"),
    ("- just\n- a list\n", "", "YAML mapping"),
    ("required_params: [a\n", "line", "not valid YAML"),
])
def test_invalid_policy_names_file_key_path_and_problem(tmp_path, text, where, problem):
    path = write(tmp_path, "policy.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(path)
    assert where in message
    assert problem in message
    assert "\n" not in message


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(str(tmp_path / "nope.yaml"))


def test_policy_overrides_and_scopes(tmp_path):
    path = write(tmp_path, "policy.yaml", (
        "name: bank\n"
        "required_tags: [owner, cost_center]\n"
        "rules: {LIN-005: {severity: error}}\n"
        "scopes:\n"
        "  - {name: credit, models: ['credit-*'], required_tags: [model_risk_id], rules: {LIN-004: {severity: error}}}\n"
    ))
    policy = load_policy(path)
    credit, churn = policy.for_model("credit-risk"), policy.for_model("churn")
    assert credit.required_tags == ["owner", "cost_center", "model_risk_id"]
    assert churn.required_tags == ["owner", "cost_center"]
    assert credit.rule("LIN-004").severity == "error" and churn.rule("LIN-004").severity is None
    assert credit.rule("LIN-005").severity == "error"
    assert credit.scopes == ["credit"] and churn.scopes == []
    assert credit.approval_tag == "approved_by"  # from the built-in default


def test_digest_changes_with_policy_and_waivers(tmp_path):
    a = load_policy(write(tmp_path, "a.yaml", "required_params: [seed]\n"))
    b = load_policy(write(tmp_path, "b.yaml", "required_params: [seed, lr]\n"))
    waivers = write(tmp_path, "w.yaml", "waivers:\n  - {rule: LIN-005, model: 'x', reason: legacy data, approver: mo, expires: 2099-01-01}\n")
    c = load_policy(str(tmp_path / "a.yaml"), waivers)
    assert len({a.digest, b.digest, c.digest}) == 3
    assert load_policy(str(tmp_path / "a.yaml")).digest == a.digest


def test_waivers_file_next_to_the_policy(tmp_path):
    write(tmp_path, "waivers.yaml", "waivers:\n  - {rule: EVD-004, reason: legacy model, approver: mo, expires: 2099-01-01}\n")
    policy = load_policy(write(tmp_path, "policy.yaml", "waivers_file: waivers.yaml\n"))
    assert [w.rule for w in policy.waivers] == ["EVD-004"]


@pytest.mark.parametrize("text, where", [
    ("waivers:\n  - {rule: EVD-004, approver: mo, expires: 2099-01-01}\n", "waivers.0.reason"),
    ("waivers:\n  - {rule: EVD-004, reason: legacy, approver: mo, expires: someday}\n", "waivers.0.expires"),
    ("waivers:\n  - {rule: XYZ-001, reason: legacy, approver: mo, expires: 2099-01-01}\n", "waivers.0.rule"),
])
def test_invalid_waivers(tmp_path, text, where):
    path = write(tmp_path, "waivers.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policy(None, path)
    assert str(info.value).startswith(f"{path}: {where}")


def test_waiver_that_applies_and_one_that_expired(scenarios, registry, store, tmp_path):
    from shared.engine import Engine
    from shared.report import Trigger

    today = date.today()
    waivers = write(tmp_path, "waivers.yaml", (
        "waivers:\n"
        f"  - {{rule: LIN-005, model: 'churn-noda*', reason: backfilled data not tracked, approver: mo, expires: {today + timedelta(days=30)}}}\n"
        f"  - {{rule: LIN-004, model: 'churn-nogit', reason: old pipeline, approver: mo, expires: {today - timedelta(days=1)}}}\n"
    ))
    engine = Engine(load_policy(None, waivers), store)
    nodata = engine.check_version(registry, "churn-nodata", scenarios["no_dataset"].version, trigger=Trigger("cli", "check"))
    finding = next(f for f in nodata["findings"] if f["rule_id"] == "LIN-005")
    assert finding["waived"] is True and finding["waiver"]["approver"] == "mo"
    assert nodata["verdict"] == "pass" and nodata["counts"]["waived"] == 1
    nogit = engine.check_version(registry, "churn-nogit", scenarios["no_git"].version, trigger=Trigger("cli", "check"))
    finding = next(f for f in nogit["findings"] if f["rule_id"] == "LIN-004")
    assert finding["waived"] is False
    assert nogit["verdict"] == "warn"
    assert [w["rule"] for w in nogit["expired_waivers"]] == ["LIN-004"]
    assert nogit["expired_waivers"][0]["status"] == "expired, ignored"
