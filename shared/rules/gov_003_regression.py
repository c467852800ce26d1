from shared.rules.base import PROMOTION_ONLY, Hit, Rule


class Gov003Regression(Rule):
    id = "GOV-003"
    title = "Regression against the current champion"
    severity = "error"
    remediation = "Keep the current holder, or retrain until the candidate is at least as good; a deliberate trade-off needs a waiver."
    checks = PROMOTION_ONLY

    def evaluate(self, ctx, params):
        run, promotion = ctx.evidence.run, ctx.evidence.promotion
        previous = promotion.previous
        if run is None or not run.found or previous is None or not previous.metrics:
            return
        tolerance = ctx.policy.regression_tolerance
        for name, direction in ctx.policy.regression_metrics.items():
            new, old = run.metrics.get(name), previous.metrics.get(name)
            if new is None or old is None:
                continue
            worse = new < old - tolerance if direction == "higher" else new > old + tolerance
            if worse:
                yield Hit(
                    f"'{name}' is {new:g} against {old:g} for version {previous.version}, the previous holder of "
                    f"{promotion.target} ({direction} is better, tolerance {tolerance:g}).",
                    {"metric": name, "value": new, "previous": old, "previous_version": previous.version,
                     "direction": direction, "tolerance": tolerance},
                )
