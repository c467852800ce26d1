"""The errors Evidence Gate distinguishes. Each says what happened and what to do next.

- :class:`RegistryUnavailable` (and :class:`VersionNotReady`) are *transient*: the registry could
  not give an answer right now. Callers retry (HTTP 503, Event Grid redelivery, CLI exit 3);
  they are never turned into findings.
- :class:`SubjectNotFound`: the model or version asked about does not exist (CLI exit 2).
- :class:`BadInput`: a request, payload or argument is malformed (HTTP 400, CLI exit 2).
- :class:`PolicyError`: the policy or waiver file is invalid (file, key path, what is wrong).
"""

from __future__ import annotations


class EvidenceGateError(Exception):
    """Base class of every error Evidence Gate raises on purpose."""


class RegistryUnavailable(EvidenceGateError):
    """The registry is unreachable, timed out, rate limited or answered 5xx: retry later."""

    def __init__(self, registry: str, reason: str, *, retry_after: float | None = None):
        self.registry = registry
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"registry {registry} is unavailable ({reason}); retry later")


class VersionNotReady(RegistryUnavailable):
    """The model version cannot be checked yet: it is still PENDING_REGISTRATION, or (for a
    registration check) its source run is still running. Check it again later."""

    def __init__(self, registry: str, model: str, version: str, *, run_id: str | None = None,
                 run_status: str | None = None, wait_minutes: int | None = None):
        if run_id:
            text = (f"{model} version {version} is not checked yet in {registry}: its source run {run_id} is still"
                    f" {run_status} (checked once it ends, at the latest {wait_minutes} min after registration);"
                    " retry later")
            self.reason = "source run still running"
        else:
            text = f"{model} version {version} is still PENDING_REGISTRATION in {registry}; retry later"
            self.reason = "version pending registration"
        EvidenceGateError.__init__(self, text)
        self.registry = registry
        self.retry_after = None


class SubjectNotFound(EvidenceGateError):
    """The registry confirms the model version (or run) asked about does not exist."""


class BadInput(EvidenceGateError):
    """A payload, request or argument is malformed; nothing was processed."""


class PolicyError(EvidenceGateError):
    """A policy or waiver file is invalid."""

    def __init__(self, source: str, path: str, problem: str):
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")


class NotFoundInRegistry(Exception):
    """The registry answered that an entity does not exist: evidence (a finding, or
    :class:`SubjectNotFound` for the subject itself), never an outage. Internal to the evidence
    collection; not an :class:`EvidenceGateError`, it never reaches a caller."""
