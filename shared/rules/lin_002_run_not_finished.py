from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Lin002RunNotFinished(Rule):
    id = "LIN-002"
    title = "Source run did not finish"
    severity = "error"
    remediation = "Register or promote only models from runs that ended FINISHED; re-run the training to completion."
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found or run.status == "FINISHED":
            return
        yield Hit(f"Source run {run.run_id} is {run.status}, not FINISHED.", {"run_id": run.run_id, "status": run.status})
