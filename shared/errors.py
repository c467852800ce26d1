"""Every error Evidence Gate raises on purpose, in one tree. Each class carries what its callers
need, so no caller decides from message text or from an ``except`` ladder of its own:

- ``transient``: the condition is expected to clear by itself (connection, timeout, 5xx, 429, a
  version not ready, Service Bus or the state store down). Retried with backoff.
- ``retry``: whether the sender of an event should deliver it again (HTTP 503 with
  ``Retry-After``, Event Grid raise, Service Bus abandon). True for transient errors and for a
  missing setting (fixing the setting makes the redelivery succeed); false for bad input.
- ``http_status`` / ``code``: the HTTP answer of a webhook (``code`` is the JSON ``error`` field).
- ``exit_code``: the CLI's exit code (2 bad input or nothing to check, 3 retry later).
- ``telemetry_kind``: the ``kind`` dimension of the registry-error metric.

The three kinds of trouble with a registry are handled differently (docs/troubleshooting.md):

1. *transient* (:class:`RegistryUnavailable`, :class:`RateLimited`, :class:`VersionNotReady`,
   :class:`DeadlineExceeded`): retried; never a finding.
2. *confirmed absent* (:class:`NotFoundInRegistry`): the registry says the run, logged model or
   file does not exist. Evidence: it becomes a finding (or :class:`SubjectNotFound` when it is the
   version asked about itself).
3. *cannot read this evidence* (:class:`EvidenceUnreadable`): 401/403 on artifacts, an artifact
   location with no usable credentials or scheme, an endpoint the platform does not serve, a file
   too large. Not retried: the check evaluates everything else and reports the unreadable part as
   EVD-008 (fails closed), saying what was unreadable, why and what to configure.

:class:`NotFoundInRegistry` and :class:`EvidenceUnreadable` are internal to evidence collection:
they become evidence and never reach a caller.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class EvidenceGateError(Exception):
    """Base class of every error Evidence Gate raises on purpose."""

    transient = False
    retry = False
    http_status = 400
    code = "bad_input"
    exit_code = EXIT_USAGE
    telemetry_kind = "error"
    retry_after: float | None = None


# -- transient: retried ----------------------------------------------------------------------
class TransientError(EvidenceGateError):
    """Something Evidence Gate depends on cannot answer right now: retry later."""

    transient = True
    retry = True
    http_status = 503
    code = "unavailable"
    exit_code = EXIT_UNAVAILABLE
    telemetry_kind = "unavailable"


class RegistryUnavailable(TransientError):
    """The registry is unreachable, timed out, rate limited or answered 5xx: retry later.

    ``status``: the HTTP status the registry answered, when it answered."""

    code = "registry_unavailable"

    def __init__(self, registry: str, reason: str, *, retry_after: float | None = None, status: int | None = None):
        self.registry = registry
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
        super().__init__(f"registry {registry} is unavailable ({reason}); retry later")


class RateLimited(RegistryUnavailable):
    """The registry answered 429 (after the client's own retries)."""

    telemetry_kind = "rate_limited"

    def __init__(self, registry: str, reason: str, *, retry_after: float | None = None):
        super().__init__(registry, reason, retry_after=retry_after, status=429)


class DeadlineExceeded(RegistryUnavailable):
    """The check's deadline (``EVIDENCE_GATE_CHECK_DEADLINE_SECONDS``) passed before the registry
    answered everything the check needs."""

    telemetry_kind = "deadline"

    def __init__(self, registry: str, what: str, deadline: float):
        super().__init__(registry, f"{what}: the check's deadline of {deadline:g} s passed")
        self.deadline = deadline


class VersionNotReady(RegistryUnavailable):
    """The model version cannot be checked yet: it is still PENDING_REGISTRATION, or (for a
    registration check) its source run is still running. Check it again later."""

    telemetry_kind = "not_ready"

    def __init__(self, registry: str, model: str, version: str, *, run_id: str | None = None,
                 run_status: str | None = None, wait_minutes: int | None = None):
        if run_id:
            text = (f"{model} version {version} is not checked yet in {registry}: its source run {run_id} is still"
                    f" {run_status} (checked once it ends, at the latest {wait_minutes} min after registration);"
                    " retry later")
            reason = "source run still running"
        else:
            text = f"{model} version {version} is still PENDING_REGISTRATION in {registry}; retry later"
            reason = "version pending registration"
        Exception.__init__(self, text)
        self.registry = registry
        self.reason = reason
        self.retry_after = None
        self.status = None
        self.run_id = run_id
        self.wait_minutes = wait_minutes


class PublishError(TransientError):
    """Publishing to Service Bus failed. Do not acknowledge the event: let it be redelivered."""

    code = "sink_unavailable"
    telemetry_kind = "sink_unavailable"


class TeamsUnavailable(TransientError):
    """Teams could not take the card now (429, 5xx, timeout, connection error): retry later.

    Raised out of the Service Bus triggered function so the message is redelivered (and
    dead-lettered after the subscription's max delivery count). Never carries the URL."""

    code = "teams_unavailable"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class StateStoreUnavailable(TransientError):
    """The shared state store (Azure Table Storage) is unreachable, timed out, throttled or
    answered 5xx. The check's memory (earlier reports, alias holders, watermarks) cannot be read or
    written, so nothing is decided: retry later (never a GOV-006 from missing memory).

    ``reason`` never carries the connection string, the account key or a SAS token."""

    code = "state_unavailable"
    telemetry_kind = "state_unavailable"

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"the state store is unavailable ({reason}); retry later")


class IntakeUnavailable(TransientError):
    """The intake queue (Azure Storage queue, ``EVIDENCE_GATE_INTAKE``) could not take a message:
    unreachable, timed out, throttled or 5xx. The delivery was not accepted: the sender retries
    (HTTP 503 with ``Retry-After``, Event Grid redelivery). ``reason`` never carries a key or SAS."""

    code = "intake_unavailable"
    telemetry_kind = "intake_unavailable"

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"the intake queue is unavailable ({reason}); retry later")


class EventInProgress(TransientError):
    """Another instance is checking the same event right now (it holds the event's lease in the
    state store): check again later, when its report can be reused. Internal to the intake."""

    code = "in_progress"
    telemetry_kind = "in_progress"


# -- configuration: the operator has to act; the sender retries meanwhile ----------------------
class ConfigurationError(EvidenceGateError):
    """A setting needed to handle the event is missing or unusable; the operator has to fix it.
    Not transient, but the sender retries (fixing the setting makes the redelivery succeed)."""

    retry = True
    http_status = 503
    code = "not_configured"
    exit_code = EXIT_UNAVAILABLE
    telemetry_kind = "not_configured"


class PolicyError(ConfigurationError):
    """A policy or waiver file is invalid (file, key path, what is wrong)."""

    exit_code = EXIT_USAGE

    def __init__(self, source: str, path: str, problem: str):
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")


# -- the sender's fault: never retried ---------------------------------------------------------
class BadInput(EvidenceGateError):
    """A payload, request or argument is malformed; nothing was processed."""


class Unauthorized(EvidenceGateError):
    """The delivery's signature or credentials are missing, wrong or stale (HTTP 401)."""

    http_status = 401
    code = "unauthorized"


class SubjectNotFound(EvidenceGateError):
    """The registry confirms the model version (or run) asked about does not exist: nothing to
    check (a webhook answers 200 "skipped", the CLI exits 2)."""

    http_status = 200
    code = "not_found"


# -- evidence, internal to collection ----------------------------------------------------------
class NotFoundInRegistry(EvidenceGateError):
    """The registry answered that an entity does not exist: evidence (a finding, or
    :class:`SubjectNotFound` for the subject itself), never an outage. Never reaches a caller."""


class EvidenceUnreadable(EvidenceGateError):
    """This piece of evidence cannot be read with the configuration at hand, and retrying will not
    change that: EVD-008. Never reaches a caller; collection records it on the evidence.

    ``what``: what could not be read (e.g. ``model artifacts at abfss://models@lake...``);
    ``reason``: why (``HTTP 403 from storage account 'lake'``); ``fix``: what to configure."""

    def __init__(self, what: str, reason: str, fix: str, *, location: str | None = None):
        self.what = what
        self.reason = reason
        self.fix = fix
        self.location = location
        super().__init__(f"{what}: {reason}; {fix}")
