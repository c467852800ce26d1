from shared.rules.base import PROMOTION_ONLY, Hit, Rule


class Gov004NoRollback(Rule):
    id = "GOV-004"
    title = "Nothing to roll back to"
    severity = "info"
    remediation = "Keep a previous good version registered (and known) so the alias can be moved back quickly."
    checks = PROMOTION_ONLY

    def evaluate(self, ctx, params):
        promotion = ctx.evidence.promotion
        if promotion.previous is None:
            yield Hit(f"No earlier holder of {promotion.target} is known to roll back to.", {})
