from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Lin001NoSourceRun(Rule):
    id = "LIN-001"
    title = "No source run"
    severity = "error"
    remediation = (
        "Register the version from a run (mlflow.<flavor>.log_model(..., registered_model_name=...) inside "
        "mlflow.start_run(), or model_uri='runs:/<run_id>/<path>') so it can be traced to its training."
    )
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        ev = ctx.evidence
        if ev.version is None or ev.version.status == "FAILED_REGISTRATION" or ev.run is not None:
            return
        if any(u.part in ("logged_model", "run") for u in ev.unreadable):  # the run is there, unreadable: EVD-008
            return
        yield Hit(
            f"Version {ev.version.version} of {ev.version.name} has no resolvable source run "
            f"(no run id, and source '{ev.version.source}' is not a logged model with a source run).",
            {"source": ev.version.source},
        )
