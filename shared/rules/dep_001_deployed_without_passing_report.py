from shared.rules.base import Hit, Rule


class Dep001DeployedWithoutPassingReport(Rule):
    id = "DEP-001"
    title = "Deployed without a passing report"
    severity = "error"
    remediation = "Roll the deployment back, or run the gate on the version and fix its findings; deploy only versions that passed."
    checks = frozenset({"deployment"})

    def evaluate(self, ctx, params):
        dep = ctx.deployment
        if dep is not None and not dep.passing_report:
            yield Hit(
                f"{dep.model} version {dep.version} was deployed to '{dep.service}' without a passing Evidence Gate report.",
                {"service": dep.service, "model": dep.model, "version": dep.version},
            )
