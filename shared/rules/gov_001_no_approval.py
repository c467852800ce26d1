from shared.rules.base import PROMOTION_ONLY, Hit, Rule


class Gov001NoApproval(Rule):
    id = "GOV-001"
    title = "Promotion without approval"
    severity = "error"
    remediation = "A release manager other than the author sets the approval tag on the version (e.g. approved_by=<name>) before promotion."
    checks = PROMOTION_ONLY

    def evaluate(self, ctx, params):
        mv, promotion = ctx.evidence.version, ctx.evidence.promotion
        key = ctx.policy.approval_tag
        if not (mv.tags.get(key) or "").strip() and not promotion.approvals:
            yield Hit(f"Version {mv.version} was promoted to {promotion.target} without an '{key}' tag.", {"approval_tag": key})
