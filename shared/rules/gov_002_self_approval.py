from shared.rules.base import PROMOTION_ONLY, Hit, Rule


def same_person(a: str | None, b: str | None) -> bool:
    """Case-insensitive; 'alice' and 'alice@contoso.com' are the same person."""
    if not a or not b:
        return False
    a, b = a.strip().lower(), b.strip().lower()
    if a == b:
        return True
    if ("@" in a) != ("@" in b):
        return a.split("@")[0] == b.split("@")[0]
    return False


class Gov002SelfApproval(Rule):
    id = "GOV-002"
    title = "Self-approval"
    severity = "error"
    remediation = "Separation of duties: the approval must come from someone who neither trained nor registered the model."
    checks = PROMOTION_ONLY

    def evaluate(self, ctx, params):
        mv, run, promotion = ctx.evidence.version, ctx.evidence.run, ctx.evidence.promotion
        approvers = [(mv.tags.get(ctx.policy.approval_tag) or "").strip()]
        approvers += [a.approver.strip() for a in (promotion.approvals if promotion else [])]
        authors = [("registered the version", mv.user_id)] + [("registered the version", i) for i in mv.user_ids]
        if run is not None and run.found:
            authors += [("ran the training", run.user), ("ran the training", run.tags.get("mlflow.user"))]
            authors += [("ran the training", i) for i in run.user_ids]
        for approver in filter(None, approvers):
            for role, author in authors:
                if same_person(approver, author):
                    yield Hit(f"The approver '{approver}' also {role}.", {"approver": approver, "role": role})
                    return
