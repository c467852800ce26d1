from datetime import UTC, datetime

from shared.rules.base import PROMOTION_ONLY, Hit, Rule


class Gov005Stale(Rule):
    id = "GOV-005"
    title = "Stale candidate"
    severity = "warning"
    remediation = "Retrain on current data, or promote the newer version that already passed the gate."
    checks = PROMOTION_ONLY

    def evaluate(self, ctx, params):
        ev = ctx.evidence
        run = ev.run
        max_days = ctx.policy.max_run_age_days
        if run is not None and run.found and run.start_time:
            started = datetime.fromtimestamp(run.start_time / 1000, tz=UTC)
            age_days = (ctx.now - started).total_seconds() / 86400
            if age_days > max_days:
                yield Hit(f"Source run {run.run_id} started {age_days:.0f} days ago (maximum {max_days}).",
                          {"run_id": run.run_id, "age_days": round(age_days, 1), "max_run_age_days": max_days})
        if ev.history.newer_passed_versions:
            newer = ", ".join(ev.history.newer_passed_versions)
            yield Hit(f"Newer version(s) {newer} already passed the gate.", {"newer_versions": ev.history.newer_passed_versions})
