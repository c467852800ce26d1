from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Evd004NoSignature(Rule):
    id = "EVD-004"
    title = "No model signature"
    severity = "warning"
    remediation = "Log the model with a signature: log_model(..., input_example=X[:5]) or signature=infer_signature(X, y)."
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        artifacts = ctx.evidence.model_artifacts
        if artifacts is not None and artifacts.found and not artifacts.has_signature:
            yield Hit("The model's MLmodel has no signature.", {"flavors": artifacts.flavors})
