"""Collect the evidence for a model version (optionally being promoted) or a run.

Fetches the minimum: for a normal MLflow 3 model version (run id on the version, source
``models:/m-<id>``) a registration check makes 6 registry requests (version, run, logged model,
model artifact list, MLmodel, run artifact list) and a promotion check 9 (plus the registered
model and the previous holder's version and run), plus one artifact list per subdirectory of the
model directory and of the run's artifacts (``code/``...: SEC-002 looks at every file; at most the
policy's ``max_artifact_dirs`` directories a check, see :mod:`shared.evidence.tree`). The
registered model is fetched for a registration check only when the version itself lacks a tag
the policy requires.

Evidence that cannot be read (:class:`~shared.errors.EvidenceUnreadable`: artifacts the identity
may not read, a location no store serves, an endpoint the registry does not serve) is recorded in
``Evidence.unreadable`` (EVD-008) and the rest of the check goes on; the rules that would read the
missing part stay quiet instead of reporting it absent.
"""

from __future__ import annotations

import json
import re
from concurrent import futures
from typing import Protocol

import yaml

from shared.errors import EvidenceUnreadable, NotFoundInRegistry, SubjectNotFound, VersionNotReady
from shared.evidence.model import (
    LOG_MODEL_HISTORY_TAG,
    Evidence,
    GateHistory,
    LoggedModelInfo,
    ModelArtifacts,
    PreviousHolder,
    Promotion,
    RunEvidence,
    Unreadable,
    VersionEvidence,
)
from shared.evidence.registry import RegistryClient
from shared.evidence.tree import DEFAULT_MAX_DIRS, ListingBudget, list_tree

_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9A-Za-z]+)/?$")
_RUNS_SOURCE = re.compile(r"^runs:/([^/]+)/?(.*)$")
_RUN_ID_IN_PATH = re.compile(r"/([0-9a-f]{32})/artifacts(?:/|$)")


class History(Protocol):
    """What the state store remembers (part of :class:`shared.state.StateStore`)."""

    def previous_holder(self, registry: str, model: str, target: str, exclude_version: str) -> str | None: ...

    def record_holders(self, registry: str, model: str, holders: dict[str, str]) -> None: ...

    def has_passing_registration(self, registry: str, model: str, version: str) -> bool: ...

    def passed_versions(self, registry: str, model: str) -> list[str]: ...


def target_key(alias: str | None, stage: str | None) -> str:
    return f"alias:{alias}" if alias else f"stage:{stage}"


def collect_version(
    client: RegistryClient,
    name: str,
    version: str,
    *,
    alias: str | None = None,
    stage: str | None = None,
    required_tags: list[str] = (),
    history: History | None = None,
    version_evidence: VersionEvidence | None = None,
    max_artifact_dirs: int = DEFAULT_MAX_DIRS,
) -> Evidence:
    """Evidence for one model version; a promotion when ``alias`` or ``stage`` is given.

    ``version_evidence``: the version's record already fetched from this registry (the reconcile
    sweep's listing), used instead of ``get_model_version`` (one request fewer). The caller must
    only pass a record as complete as ``get_model_version``'s (see ``shared.reconcile``).
    ``max_artifact_dirs``: the artifact directories the check may list (the run's and the model's together)."""
    evidence = Evidence(registry=client.uri)
    budget = ListingBudget(max_artifact_dirs)
    if version_evidence is not None:
        if (version_evidence.name, version_evidence.version) != (name, str(version)):
            raise ValueError(f"version_evidence is {version_evidence.name} v{version_evidence.version},"
                             f" not {name} v{version}")
        mv = version_evidence
    else:
        try:
            mv = client.get_model_version(name, version)
        except NotFoundInRegistry:
            raise SubjectNotFound(f"model '{name}' version {version} does not exist in {client.uri}") from None
    if mv.status == "PENDING_REGISTRATION":
        raise VersionNotReady(client.uri, name, version)
    evidence.version = mv
    promoting = bool(alias or stage)

    fetches = {}
    if promoting or any(tag not in mv.tags for tag in required_tags):
        fetches["registered_model"] = _FETCHES.submit(client.get_registered_model, name)
    if mv.status != "FAILED_REGISTRATION":
        if mv.run_id and (mv.model_id or _LOGGED_MODEL_SOURCE.match(mv.source or "")):
            # The run and the logged model do not depend on each other: fetch both chains at once.
            fetches["run"] = _FETCHES.submit(_run_chain, client, mv, None, budget, evidence.unreadable)
            fetches["model_artifacts"] = _FETCHES.submit(
                lambda: _model_artifacts(client, mv, *_fetch_logged_model(client, mv, evidence.unreadable), None,
                                         budget, evidence.unreadable))
        else:
            logged_model, model_readable = _fetch_logged_model(client, mv, evidence.unreadable)
            evidence.run, evidence.run_resolved_by = _run_chain(client, mv, logged_model, budget, evidence.unreadable)
            evidence.model_artifacts = _model_artifacts(client, mv, logged_model, model_readable, evidence.run,
                                                        budget, evidence.unreadable)
    futures.wait(fetches.values())  # every request has ended before anything is raised or returned
    if "run" in fetches:
        evidence.run, evidence.run_resolved_by = fetches["run"].result()
    if "model_artifacts" in fetches:
        evidence.model_artifacts = fetches["model_artifacts"].result()
    if "registered_model" in fetches:
        evidence.registered_model = fetches["registered_model"].result()
    evidence.unreadable += budget.unreadable()

    if promoting:
        evidence.promotion = _promotion(client, evidence, alias, stage, history)
    if history is not None and promoting:  # only the promotion rules read the gate's history
        evidence.history = GateHistory(
            passing_registration=history.has_passing_registration(client.uri, name, mv.version),
            newer_passed_versions=sorted(
                (v for v in history.passed_versions(client.uri, name) if v.isdigit() and int(v) > int(mv.version)),
                key=int,
            )
            if mv.version.isdigit()
            else [],
        )
    if history is not None and evidence.registered_model is not None:
        history.record_holders(client.uri, name, _holders(evidence.registered_model))
    evidence.registry_requests = client.requests
    return evidence


def collect_run(client: RegistryClient, run_id: str, *, max_artifact_dirs: int = DEFAULT_MAX_DIRS) -> Evidence:
    """Evidence for a run on its own (job completions)."""
    evidence = Evidence(registry=client.uri)
    run = client.get_run(run_id)
    if not run.found:
        raise SubjectNotFound(f"run {run_id} does not exist in {client.uri}")
    budget = ListingBudget(max_artifact_dirs)
    run.artifacts = _list(client, run.artifact_uri, "run_artifacts", budget, evidence.unreadable)
    evidence.unreadable += budget.unreadable()
    evidence.run = run
    evidence.run_resolved_by = "run"
    evidence.registry_requests = client.requests
    return evidence


# -- helpers ------------------------------------------------------------------------------------
# Independent registry requests of one check run side by side (the same requests, fewer of them
# one after the other). Shared by all checks of the process; tasks never wait on each other.
_FETCHES = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="evidence-fetch")


def _run_chain(client: RegistryClient, mv: VersionEvidence, logged_model: LoggedModelInfo | None,
               budget: ListingBudget, unreadable: list[Unreadable]):
    try:
        run, resolved_by = _resolve_run(client, mv, logged_model)
    except EvidenceUnreadable as exc:  # e.g. a Unity Catalog version whose run is in another workspace
        unreadable.append(_record("run", exc))
        return None, None
    if run is not None and run.found:
        run.artifacts = _list(client, run.artifact_uri, "run_artifacts", budget, unreadable)
    return run, resolved_by


def _fetch_logged_model(client: RegistryClient, mv: VersionEvidence,
                        unreadable: list[Unreadable]) -> tuple[LoggedModelInfo | None, bool]:
    """(the version's MLflow 3 logged model or None, whether it could be read)."""
    match = _LOGGED_MODEL_SOURCE.match(mv.source or "")
    model_id = mv.model_id or (match.group(1) if match else None)
    if not model_id:
        return None, True
    try:
        return client.get_logged_model(model_id), True
    except EvidenceUnreadable as exc:
        unreadable.append(_record("logged_model", exc))
        return None, False


def _record(part: str, exc: EvidenceUnreadable) -> Unreadable:
    """The unreadable part as evidence; signed-URL parameters (SAS tokens) never reach a report."""
    return Unreadable(part=part, what=_unsigned(exc.what), reason=exc.reason, fix=exc.fix,
                      location=_unsigned(exc.location) if exc.location else None)


def _unsigned(text: str) -> str:
    return re.sub(r"\?[^\s]*", "", text) if "?" in text else text


def _resolve_run(
    client: RegistryClient, mv: VersionEvidence, logged_model: LoggedModelInfo | None
) -> tuple[RunEvidence | None, str | None]:
    if mv.run_id:
        return client.get_run(mv.run_id), "version.run_id"
    if logged_model is not None and logged_model.source_run_id:
        return client.get_run(logged_model.source_run_id), "logged_model"
    source = mv.source or ""
    runs = _RUNS_SOURCE.match(source)
    if runs:
        return client.get_run(runs.group(1)), "runs_uri"
    in_path = _RUN_ID_IN_PATH.search(source)
    if in_path:
        run = client.get_run(in_path.group(1))
        if not run.found:
            return run, "artifact_path"
        if _history_mentions(run, in_path.group(1)):
            return run, "log_model_history"
        if run.artifact_uri and source.startswith(run.artifact_uri.rstrip("/")):
            return run, "artifact_path"
    return None, None


def _history_mentions(run: RunEvidence, run_id: str) -> bool:
    try:
        entries = json.loads(run.tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
    except ValueError:
        return False
    return any(isinstance(e, dict) and e.get("run_id") == run_id for e in entries)


def _model_location(mv: VersionEvidence, logged_model: LoggedModelInfo | None, run: RunEvidence | None) -> str | None:
    if logged_model is not None:
        return logged_model.artifact_location
    source = mv.source or ""
    runs = _RUNS_SOURCE.match(source)
    if runs:
        if run is None or not run.found or not run.artifact_uri:
            return None
        return run.artifact_uri.rstrip("/") + ("/" + runs.group(2).strip("/") if runs.group(2) else "")
    if source.startswith("models:/"):
        return None  # a logged model the registry no longer has
    return source or None


def _model_artifacts(
    client: RegistryClient, mv: VersionEvidence, logged_model: LoggedModelInfo | None, logged_model_readable: bool,
    run: RunEvidence | None, budget: ListingBudget, unreadable: list[Unreadable],
) -> ModelArtifacts:
    location = _model_location(mv, logged_model, run)
    artifacts = ModelArtifacts(location=location, readable=logged_model_readable)
    if not location:
        return artifacts
    try:
        artifacts.files = list_tree(client, location, budget)
        if "MLmodel" in artifacts.files:
            try:
                parsed = yaml.safe_load(client.read_artifact_text(location, "MLmodel"))
            except yaml.YAMLError:
                parsed = None
            artifacts.mlmodel = parsed if isinstance(parsed, dict) else {"unparseable": True}
    except EvidenceUnreadable as exc:
        unreadable.append(_record("model_artifacts", exc))
        artifacts.readable = False
    return artifacts


def _list(client: RegistryClient, location: str | None, part: str, budget: ListingBudget,
          unreadable: list[Unreadable]) -> list[str]:
    """The whole artifact tree at ``location`` (:func:`list_tree`), or [] with the reason recorded."""
    try:
        return list_tree(client, location, budget)
    except EvidenceUnreadable as exc:
        unreadable.append(_record(part, exc))
        return []


def _holders(rm) -> dict[str, str]:
    holders = {f"alias:{a}": v for a, v in rm.aliases.items()}
    for stage, version in rm.latest_versions.items():
        if stage not in ("None", "Archived"):
            holders[f"stage:{stage}"] = version
    return holders


def _promotion(
    client: RegistryClient, evidence: Evidence, alias: str | None, stage: str | None, history: History | None
) -> Promotion:
    mv, rm = evidence.version, evidence.registered_model
    promotion = Promotion(alias=alias, stage=stage)
    current = rm.aliases.get(alias) if alias else rm.latest_versions.get(stage)
    previous, found_by = None, None
    if current and current != mv.version:
        previous, found_by = current, ("alias" if alias else "stage")
    elif history is not None:
        previous = history.previous_holder(client.uri, mv.name, target_key(alias, stage), mv.version)
        found_by = "history"
    if previous:
        holder = PreviousHolder(version=previous, found_by=found_by)
        try:
            prev_mv = client.get_model_version(mv.name, previous)
        except NotFoundInRegistry:
            prev_mv = None
        if prev_mv is not None:
            prev_lm = None if prev_mv.run_id else _fetch_logged_model(client, prev_mv, [])[0]
            prev_run, _ = _resolve_run(client, prev_mv, prev_lm)
            if prev_run is not None and prev_run.found:
                holder.run_id = prev_run.run_id
                holder.metrics = dict(prev_run.metrics)
        promotion.previous = holder
    return promotion
