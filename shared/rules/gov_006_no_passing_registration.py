from shared.rules.base import PROMOTION_ONLY, Hit, Rule


class Gov006NoPassingRegistration(Rule):
    id = "GOV-006"
    title = "Gate did not pass at registration"
    severity = "error"
    remediation = "Make sure Evidence Gate receives the registry's events (or run `evidence-gate check` on the version) and fix its findings before promoting."
    checks = PROMOTION_ONLY

    def evaluate(self, ctx, params):
        ev = ctx.evidence
        if not ev.history.passing_registration:
            yield Hit(f"Version {ev.version.version} has no passing registration report.", {})
