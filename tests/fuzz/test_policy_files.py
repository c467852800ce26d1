"""Property-based tests of the policy and waiver loaders: any file either loads or raises
PolicyError (the CLI's exit 2 with one plain line; the functions' 503 "not_configured", since a bad
policy is the operator's to fix, not the sender's); nothing else escapes."""

from __future__ import annotations

import os
import tempfile
from datetime import date

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import PolicyError
from shared.policy import load_policy
from shared.policy.loader import Policy

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20), st.dates(), st.sampled_from(["error", "warning", "info", "higher", "lower",
                                                                       "LIN-005", "EVD-004", "credit-*", "champion"]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(
                                                       ["min", "max", "severity", "enabled", "params", "auc",
                                                        "LIN-004", "LIN-006", "interactive_sources"])), c, max_size=4)),
                      max_leaves=15)
POLICY_KEYS = ["name", "required_params", "required_metrics", "required_tags", "protected_aliases", "protected_stages",
               "approval_tag", "regression_metrics", "regression_tolerance", "max_run_age_days", "rules", "scopes",
               "waivers_file"]
policies = st.dictionaries(st.one_of(st.sampled_from(POLICY_KEYS), st.text(max_size=8)), values, max_size=6)
WAIVER_KEYS = ["rule", "model", "version", "reason", "approver", "expires"]
waiver = st.fixed_dictionaries({}, optional={
    "rule": st.one_of(st.sampled_from(["EVD-004", "LIN-005", "XXX-999"]), values),
    "model": st.one_of(st.just("legacy-*"), values), "version": values,
    "reason": st.one_of(st.just("signature added next retrain"), values),
    "approver": st.one_of(st.just("maria"), values), "expires": st.one_of(st.dates(), values)})
waiver_files = st.one_of(st.fixed_dictionaries({"waivers": st.one_of(st.lists(waiver, max_size=4), values)}),
                         st.dictionaries(st.text(max_size=8), values, max_size=3))


def texts(documents):
    return st.one_of(
        documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        st.text(max_size=300),
        st.text(alphabet=":-[]{}&*!|>'\"%@` \n\tabc1", max_size=200),  # YAML syntax soup
        st.sampled_from([3, 60, 1500]).map(lambda n: "[" * n + "]" * n),  # deep nesting
    )


def load(policy_text: str | None, waivers_text: str | None):
    with tempfile.TemporaryDirectory() as tmp:
        policy_path = waivers_path = None
        if policy_text is not None:
            policy_path = os.path.join(tmp, "policy.yaml")
            with open(policy_path, "w", encoding="utf-8") as fh:
                fh.write(policy_text)
        if waivers_text is not None:
            waivers_path = os.path.join(tmp, "waivers.yaml")
            with open(waivers_path, "w", encoding="utf-8") as fh:
                fh.write(waivers_text)
        try:
            policy = load_policy(policy_path, waivers_path)
        except PolicyError as exc:
            assert any(str(exc).startswith(p) for p in (policy_path, waivers_path) if p), exc
            return None
    assert isinstance(policy, Policy) and policy.digest.startswith("sha256:")
    # A policy that loads is usable: every model resolves and waivers are decided.
    for model in ("credit-card", "churn", ""):
        effective = policy.for_model(model)
        effective.is_protected("champion", None)
        policy.waivers_for(model, "1", date(2026, 1, 1))
    return policy


@FUZZ
@given(texts(policies))
def test_policy_file_loads_or_raises_policy_error(text):
    load(text, None)


@FUZZ
@given(texts(waiver_files))
def test_waivers_file_loads_or_raises_policy_error(text):
    load(None, text)


@settings(max_examples=25, deadline=None)
@given(texts(policies), texts(waiver_files))
def test_policy_and_waivers_together(policy_text, waivers_text):
    load(policy_text, waivers_text)
