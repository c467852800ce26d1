"""A training job run as the platforms announce it: the one type the event parsers produce
(:mod:`shared.sources`) and the rules read (JOB-001 through :class:`shared.rules.base.CheckContext`).

A module of its own so that neither side depends on the other: the rules do not import the
parsers, the parsers do not import the rules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobRun:
    """One run of a training job: a Databricks job (or task) run, or an Azure ML run."""

    platform: str
    """``databricks`` or ``azureml``."""
    run_id: str
    """The platform's run id (Databricks job/task run id, Azure ML run id)."""
    job_name: str | None = None
    """Databricks job name; Azure ML experiment name."""
    job_id: str | None = None
    """Databricks job id; Azure ML experiment id."""
    status: str | None = None
    """How the run ended, when the event says so, lower case: ``failed``, ``succeeded``."""
    task: str | None = None
    """Databricks task key, for a task-level notification."""
    parent_run_id: str | None = None
    """Databricks: the job run a task run belongs to (its MLflow runs carry that id)."""
