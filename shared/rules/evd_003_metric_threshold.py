from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Evd003MetricThreshold(Rule):
    id = "EVD-003"
    title = "Metric outside its threshold"
    severity = "error"
    remediation = "Improve the model until the metric meets the policy threshold, or agree a waiver with model risk."
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found:
            return
        for name, threshold in ctx.policy.required_metrics.items():
            value = run.metrics.get(name)
            if value is None:
                continue
            if threshold.min is not None and value < threshold.min:
                yield Hit(f"Metric '{name}' is {value:g}, below the minimum {threshold.min:g}.",
                          {"metric": name, "value": value, "min": threshold.min})
            if threshold.max is not None and value > threshold.max:
                yield Hit(f"Metric '{name}' is {value:g}, above the maximum {threshold.max:g}.",
                          {"metric": name, "value": value, "max": threshold.max})
