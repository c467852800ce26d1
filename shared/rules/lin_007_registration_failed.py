from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Lin007RegistrationFailed(Rule):
    id = "LIN-007"
    title = "Registration failed"
    severity = "error"
    remediation = "Look at the version's status message, fix the cause and register the model again."
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        mv = ctx.evidence.version
        if mv is not None and mv.status == "FAILED_REGISTRATION":
            yield Hit(
                f"Version {mv.version} of {mv.name} is FAILED_REGISTRATION.",
                {"status": mv.status, "status_message": mv.status_message},
            )
