from shared.rules.base import Hit, Rule


class Job001JobFailed(Rule):
    id = "JOB-001"
    title = "Training job failed"
    severity = "warning"
    remediation = "Open the job run, fix the failure and re-run it; models from this run must not be registered."
    checks = frozenset({"job_failure"})

    def evaluate(self, ctx, params):
        job = ctx.job
        if job is None:
            return
        name = f"'{job.job_name}' " if job.job_name else ""
        task = f" (task {job.task})" if job.task else ""
        status = job.status or "failed"  # a job_failure check is about a failed run
        yield Hit(
            f"Training job {name}run {job.run_id}{task} ended {status} on {job.platform}.",
            {"platform": job.platform, "run_id": job.run_id, "job_id": job.job_id, "job_name": job.job_name,
             "status": status, "task": job.task},
        )
