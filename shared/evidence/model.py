"""Typed evidence: what the registry told us about a model version, its run and its artifacts.

Rules read these objects only; they never talk to the registry themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAGS = ("mlflow.source.git.commit", "mlflow.databricks.gitRepoCommit")
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
ENV_FILES = ("requirements.txt", "conda.yaml", "python_env.yaml")


@dataclass(frozen=True)
class DatasetRef:
    name: str
    digest: str
    source: str
    context: str | None = None


@dataclass
class RunEvidence:
    run_id: str
    found: bool = True
    status: str | None = None
    lifecycle_stage: str | None = None
    experiment_id: str | None = None
    start_time: int | None = None  # epoch ms
    end_time: int | None = None
    user: str | None = None
    artifact_uri: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetRef] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)  # every path below the artifact root; dirs end with "/"
    # What the platform itself records about the run, beyond MLflow's tags (filled by the
    # platform's backend; None: the platform says nothing):
    code_version: str | None = None  # e.g. a Databricks job's git_source commit, an Azure ML job's git property
    launched_by_job: bool | None = None  # True: a scheduled/submitted job (never interactive); False: a notebook session
    user_ids: list[str] = field(default_factory=list)  # other identities of the run's author (object id, UPN)

    @property
    def source_type(self) -> str | None:
        return self.tags.get(SOURCE_TYPE_TAG)

    @property
    def git_commit(self) -> str | None:
        for key in GIT_COMMIT_TAGS:
            if self.tags.get(key):
                return self.tags[key]
        return self.code_version


@dataclass
class ModelArtifacts:
    location: str | None
    files: list[str] = field(default_factory=list)  # every path below the model root (code/x.py); dirs end with "/"
    mlmodel: dict | None = None
    readable: bool = True  # False: the listing or MLmodel could not be read (Evidence.unreadable says why)

    @property
    def found(self) -> bool:
        return self.mlmodel is not None

    @property
    def has_signature(self) -> bool:
        signature = (self.mlmodel or {}).get("signature") or {}
        return bool(signature.get("inputs"))

    @property
    def flavors(self) -> list[str]:
        return sorted(((self.mlmodel or {}).get("flavors") or {}).keys())

    @property
    def env_files(self) -> list[str]:
        return [f for f in ENV_FILES if f in self.files]


@dataclass(frozen=True)
class DeploymentJob:
    """The MLflow 3 deployment job of a Unity Catalog version, as the registry reports it
    (``deployment_job_state``): the job, its run for this version, and where that run is."""

    job_id: str
    run_id: str | None = None
    job_state: str | None = None  # CONNECTED, NOT_SET_UP, NOT_FOUND, REQUIRED_PARAMETERS_CHANGED
    run_state: str | None = None  # PENDING, RUNNING, APPROVAL, SUCCEEDED, FAILED, NO_VALID_DEPLOYMENT_JOB_FOUND
    current_task: str | None = None  # the task the run is at, e.g. the approval task


@dataclass
class VersionEvidence:
    name: str
    version: str
    status: str
    source: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    user_id: str | None = None
    description: str | None = None
    stage: str | None = None
    status_message: str | None = None
    creation_timestamp: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    owner: str | None = None  # the registry's native owner field (Unity Catalog)
    user_ids: list[str] = field(default_factory=list)  # other identities of whoever registered it (object id, UPN)
    deployment_job: DeploymentJob | None = None  # Unity Catalog: the version's MLflow 3 deployment job


@dataclass(frozen=True)
class LoggedModelInfo:
    """An MLflow 3 LoggedModel: where its artifacts are and the run that produced it."""

    model_id: str
    artifact_location: str | None
    source_run_id: str | None


@dataclass
class RegisteredModelEvidence:
    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version
    latest_versions: dict[str, str] = field(default_factory=dict)  # stage -> version
    owner: str | None = None  # the registry's native owner field (Unity Catalog)

    @property
    def newest_version(self) -> str | None:
        versions = [v for v in self.latest_versions.values() if v.isdigit()]
        return max(versions, key=int) if versions else None


@dataclass
class PreviousHolder:
    """The version that held the alias (or stage) before this promotion."""

    version: str
    found_by: str  # "history" | "alias" | "stage"
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Approval:
    """An approval the registry itself records: GOV-001 evidence next to the approval tag, its
    approver for GOV-002. No backend fills it yet: Databricks documents no API that returns an
    approved transition request (docs/sources/databricks-registry.md, "Approvals")."""

    approver: str
    source: str  # e.g. "transition_request"
    at: int | None = None  # epoch ms


@dataclass
class Promotion:
    alias: str | None = None
    stage: str | None = None
    previous: PreviousHolder | None = None
    approvals: list[Approval] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"alias '{self.alias}'" if self.alias else f"stage '{self.stage}'"


@dataclass
class GateHistory:
    """What earlier Evidence Gate reports say (from the report store)."""

    passing_registration: bool = False
    newer_passed_versions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unreadable:
    """One piece of evidence that could not be read, and retrying will not change that (EVD-008):
    what it is, why, and what to configure so that the next check reads it."""

    part: str  # run | logged_model | model_artifacts | run_artifacts | artifact_listing | version
    what: str
    reason: str
    fix: str
    location: str | None = None


@dataclass
class Evidence:
    registry: str
    version: VersionEvidence | None = None
    run: RunEvidence | None = None
    run_resolved_by: str | None = None  # version.run_id | logged_model | runs_uri | log_model_history
    model_artifacts: ModelArtifacts | None = None
    registered_model: RegisteredModelEvidence | None = None
    promotion: Promotion | None = None
    history: GateHistory = field(default_factory=GateHistory)
    unreadable: list[Unreadable] = field(default_factory=list)
    registry_requests: int = 0

    def digest(self) -> str:
        """A stable digest of the evidence (request counts excluded)."""
        data = asdict(self)
        data.pop("registry_requests", None)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
