from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule
from shared.secret_scan import scan_mapping, scan_value

# System tags MLflow writes itself; they hold paths and JSON, never user-provided credentials.
_SYSTEM_TAG_PREFIXES = ("mlflow.log-model.history", "mlflow.source.", "mlflow.databricks.", "mlflow.runName",
                        "mlflow.user", "mlflow.parentRunId", "mlflow.loggedArtifacts")


class Sec001CredentialInMetadata(Rule):
    id = "SEC-001"
    title = "Credential in params, tags or description"
    severity = "error"
    remediation = (
        "Rotate the credential now, then delete it from the run or model (params cannot be edited: delete the run "
        "and re-train), and read secrets from a secret store (Key Vault, Databricks secrets) instead of logging them: "
        "a reference (`@Microsoft.KeyVault(...)`, `{{secrets/scope/key}}`, `${VAR}`) or a variable's name is never flagged."
    )
    checks = RUN_LEVEL_CHECKS

    def evaluate(self, ctx, params):
        ev = ctx.evidence
        hits = []
        if ev.run is not None and ev.run.found:
            hits += scan_mapping("run.params", ev.run.params)
            tags = {k: v for k, v in ev.run.tags.items() if not k.startswith(_SYSTEM_TAG_PREFIXES)}
            hits += scan_mapping("run.tags", tags)
        if ev.version is not None:
            hits += scan_mapping("version.tags", ev.version.tags)
            hits += scan_value("version.description", ev.version.description)
        if ev.registered_model is not None:
            hits += scan_mapping("registered_model.tags", ev.registered_model.tags)
            hits += scan_value("registered_model.description", ev.registered_model.description)
        for hit in hits:
            yield Hit(f"{hit.location} looks like a credential ({hit.kind}): {hit.redacted}.", hit.as_evidence())
