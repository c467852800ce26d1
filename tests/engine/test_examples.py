"""The example policy and waivers (docs/policy.md, make demo) load and do what the docs say."""

from datetime import date
from pathlib import Path

from shared.policy import load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_policy_loads_with_its_waivers():
    policy = load_policy(str(EXAMPLES / "policy.yaml"))
    assert policy.name == "contoso-models"
    assert [w.rule for w in policy.waivers] == ["EVD-004", "LIN-005"]
    credit = policy.for_model("credit-limit")
    assert credit.scopes == ["credit"]
    assert set(credit.required_metrics) == {"accuracy", "auc", "ks_statistic"}
    assert credit.required_params == ["random_seed", "feature_set_version"]
    assert credit.rule("LIN-004").severity == "error"
    churn = policy.for_model("churn-model")
    assert churn.scopes == [] and set(churn.required_metrics) == {"accuracy"}
    active, expired = policy.waivers_for("credit-limit", "7", date(2026, 11, 22))
    assert [w.rule for w in active] == ["LIN-005"] and expired == []
    active, expired = policy.waivers_for("credit-limit", "7", date(2027, 1, 1))
    assert active == [] and [w.rule for w in expired] == ["LIN-005"]
