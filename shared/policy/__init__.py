"""Policy: which rules apply, with which severities, thresholds, scopes and waivers."""

from shared.policy.loader import Policy, load_policy
from shared.policy.model import EffectivePolicy

__all__ = ["EffectivePolicy", "Policy", "load_policy"]
