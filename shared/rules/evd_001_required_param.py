from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Evd001RequiredParam(Rule):
    id = "EVD-001"
    title = "Required param missing"
    severity = "error"
    remediation = "Log the param with mlflow.log_param(name, value) in the training run."
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found:
            return
        for name in ctx.policy.required_params:
            if name not in run.params:
                yield Hit(f"Run {run.run_id} did not log the required param '{name}'.", {"param": name})
