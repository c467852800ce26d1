from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule


class Evd008EvidenceUnreadable(Rule):
    """Part of the evidence could not be read, and retrying will not change that: the gate fails
    closed and says what was unreadable, why, and what to configure. Everything else was still
    checked; the rules that would have read the missing part stay quiet rather than report it
    absent. A report with EVD-008 is checked again by later reconcile sweeps, so fixing the
    access clears it by itself."""

    id = "EVD-008"
    title = "Evidence could not be read"
    severity = "error"
    remediation = ("Give Evidence Gate's identity read access to what the finding names (or move the artifacts to a"
                   " location it can read); the next reconcile sweep checks the version again.")
    checks = RUN_LEVEL_CHECKS | {"unverifiable"}

    def evaluate(self, ctx, params):
        for item in ctx.evidence.unreadable:
            yield Hit(f"Could not read {item.what}: {item.reason}. To fix: {item.fix}.",
                      {"part": item.part, "what": item.what, "reason": item.reason, "fix": item.fix,
                       "location": item.location})
