from shared.evidence.model import ENV_FILES
from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Evd005NoEnvironment(Rule):
    id = "EVD-005"
    title = "No environment spec"
    severity = "warning"
    remediation = "Log the model with MLflow's model API (it writes requirements.txt, conda.yaml and python_env.yaml), or pass pip_requirements=."
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        artifacts = ctx.evidence.model_artifacts
        if artifacts is not None and artifacts.found and not artifacts.env_files:
            yield Hit(
                f"The model has none of {', '.join(ENV_FILES)}.",
                {"files": [f for f in artifacts.files if not f.endswith("/")][:20]},
            )
