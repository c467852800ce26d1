from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Lin006InteractiveSource(Rule):
    id = "LIN-006"
    title = "Trained interactively"
    severity = "info"
    promotion_severity = "error"
    remediation = "Train production candidates in a job or pipeline (Databricks job, Azure ML job, CI), not a notebook or a laptop."
    checks = MODEL_VERSION_CHECKS
    params = {"interactive_sources": ["NOTEBOOK", "LOCAL"]}

    def evaluate(self, ctx, params):
        run = ctx.evidence.run
        if run is None or not run.found or run.launched_by_job:
            return
        interactive = {s.upper() for s in params["interactive_sources"]}
        source_type = (run.source_type or "").upper()
        if source_type in interactive:
            yield Hit(
                f"Run {run.run_id} came from an interactive source ({source_type}).",
                {"run_id": run.run_id, "source_type": source_type},
            )
