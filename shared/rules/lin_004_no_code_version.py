from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Lin004NoCodeVersion(Rule):
    id = "LIN-004"
    title = "No code version"
    severity = "warning"
    promotion_severity = "error"
    remediation = (
        "Train from a Git checkout (MLflow records mlflow.source.git.commit automatically) or a Databricks "
        "Git folder, or set the tag mlflow.source.git.commit on the run."
    )
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found or run.git_commit:
            return
        yield Hit(f"Run {run.run_id} records no code version (mlflow.source.git.commit).", {"run_id": run.run_id})
