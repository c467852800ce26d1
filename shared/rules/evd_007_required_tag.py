from shared.rules.base import MODEL_VERSION_CHECKS, Hit, Rule


class Evd007RequiredTag(Rule):
    id = "EVD-007"
    title = "Required tag missing"
    severity = "warning"
    remediation = "Set the tag on the registered model or the version (MlflowClient().set_registered_model_tag(name, key, value))."
    checks = MODEL_VERSION_CHECKS

    def evaluate(self, ctx, params):
        mv, rm = ctx.evidence.version, ctx.evidence.registered_model
        if mv is None:
            return
        for tag in ctx.policy.required_tags:
            if tag in mv.tags or (rm is not None and tag in rm.tags):
                continue
            if tag == "owner" and (mv.owner or (rm is not None and rm.owner)):
                continue  # the registry's native owner field (Unity Catalog) is the owner
            yield Hit(f"Neither version {mv.version} nor the registered model {mv.name} has the tag '{tag}'.", {"tag": tag})
