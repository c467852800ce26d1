from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Evd002RequiredMetric(Rule):
    id = "EVD-002"
    title = "Required metric missing"
    severity = "error"
    remediation = "Evaluate the model and log the metric with mlflow.log_metric(name, value) in the training run."
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found:
            return
        for name in ctx.policy.required_metrics:
            if name not in run.metrics:
                yield Hit(f"Run {run.run_id} did not log the required metric '{name}'.", {"metric": name})
