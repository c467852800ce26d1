from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Lin003RunDeleted(Rule):
    id = "LIN-003"
    title = "Source run deleted or missing"
    severity = "error"
    remediation = (
        "Restore the run (mlflow.tracking.MlflowClient().restore_run) or re-register the model from a run "
        "that exists; a version whose run is gone cannot be audited."
    )
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None:
            return
        if not run.found:
            yield Hit(f"The registry confirms source run {run.run_id} does not exist.", {"run_id": run.run_id})
        elif run.lifecycle_stage == "deleted":
            yield Hit(f"Source run {run.run_id} is deleted.", {"run_id": run.run_id, "lifecycle_stage": "deleted"})
