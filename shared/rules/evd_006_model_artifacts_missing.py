from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Evd006ModelArtifactsMissing(Rule):
    id = "EVD-006"
    title = "Model artifacts not found"
    severity = "error"
    remediation = "Register the version from a path that holds an MLflow model (an MLmodel file), e.g. the logged model's URI."
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        artifacts = ctx.evidence.model_artifacts
        if artifacts is None or artifacts.found or not artifacts.readable:  # unreadable: EVD-008 says so
            return
        mv = ctx.evidence.version
        where = artifacts.location or mv.source
        yield Hit(f"No MLmodel file at the version's source ({where}).", {"source": mv.source, "location": artifacts.location})
