from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Lin005NoDatasetInput(Rule):
    id = "LIN-005"
    title = "No training data lineage"
    severity = "warning"
    remediation = "Log the training data with mlflow.log_input(mlflow.data.from_pandas(df, source=...), context='training')."
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found or run.datasets:
            return
        yield Hit(f"Run {run.run_id} logged no dataset input.", {"run_id": run.run_id})
