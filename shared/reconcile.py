"""The reconcile sweep (timer function ``reconcile`` and ``evidence-gate reconcile``).

For each registry: list the model versions changed since the store's watermark (newest-updated
first, with an overlap margin), check every one that has no registration report for the current
policy digest, and check the holders of protected aliases (and protected stages) as promotions
when no promotion report exists for that digest. This is how Unity Catalog models (no webhooks)
and lost webhook deliveries are covered.

- Bounded: ``workers`` threads (default 8) and a rate limiter on every registry request, by API
  class (:func:`default_limiter`). Databricks (``databricks``, ``databricks-uc``) limits each
  workspace per class: Model Registry about 40 requests/s, MLflow tracking about 120/s, run and
  experiment search about 7/s; the sweep keeps to 30, 100 and 5 (the rest is left for the webhook
  checks and other clients sharing those limits, and for the client's own retries). Elsewhere
  (open-source servers, Azure ML: no published limit we rely on) one bucket of 100 requests/s for
  all classes is a safety net; the worker count is the real bound. The buckets have no burst
  (capacity 1): no 1-second window holds more request slots than the rate, the first second
  included, and a busy bucket keeps to its rate however late the OS wakes the waiting threads.
- Fewer requests: the listing already returns each version's record, so a registration check
  reuses it instead of fetching the version again (5 requests per version instead of 6) where the
  listing is known to be complete (:func:`listing_is_complete`): open-source servers leave only
  the aliases out, so versions holding an alias are fetched; Unity Catalog's listing has no tags,
  aliases or model id, and the other kinds are unverified, so they are always fetched.
- No sweep stalls on one version: the watermark moves past every version listed, and a version
  that could not be checked (registry unavailable, not ready: any error whose ``retry`` is set) is
  remembered in the store and retried by later sweeps with backoff (1, 2, 4 ... 60 minutes). After
  the policy's ``unverifiable_after_hours`` (default 24) it gets a report saying it could not be
  checked (check ``unverifiable``, EVD-008) instead of silence; after its ``give_up_after_days``
  (default 7) a last such report and no more retries (:func:`next_attempt`).
- A report with EVD-008 (evidence that could not be read) is checked again hourly by the sweeps
  (:data:`RECHECK_MS`), so fixing the access clears it without anyone re-running anything; a
  re-check that finds the same is not delivered again (no repeated Teams cards).
- Every check of a sweep has its own deadline, ``EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS``.
- Memory does not grow with the registry: at most ``2 * workers`` checks are submitted at a time,
  the listed records wait packed (:class:`_Listing`), and the :class:`Summary` keeps counts and
  the first :data:`SAMPLE` report summaries (``on_report`` sees every report).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import pickle
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared import settings, telemetry
from shared.errors import BadInput, EvidenceGateError, RegistryUnavailable
from shared.evidence.deadline import DEFAULT_RECONCILE_SECONDS
from shared.evidence.registry import API_CLASSES, REGISTRY, SEARCH, TRACKING, RegistryClient, seconds_setting
from shared.sources import PROMOTION, REGISTRATION, RegistryEvent

if TYPE_CHECKING:
    from shared.services import Services

log = logging.getLogger("evidence_gate.reconcile")

SOURCE = "reconcile"
OVERLAP_MS = 5 * 60 * 1000  # versions updated just before the watermark are listed again
DEFAULT_WORKERS = 8
# requests/s per API class for Databricks, whose limits per workspace are about 40 (registry),
# 120 (tracking) and 7 (search)
DATABRICKS_RATES = {REGISTRY: 30.0, TRACKING: 100.0, SEARCH: 5.0}
DEFAULT_RATE = 100.0  # requests/s, all classes together, for every other registry kind
RECHECK_MS = 60 * 60 * 1000  # a report with EVD-008 is checked again after an hour
MAX_BACKOFF_MS = 60 * 60 * 1000  # a version that stays unavailable: retried after 1, 2, 4 ... at most 60 min
UNREADABLE_RULE = "EVD-008"
ALIAS_PASS_MS = 24 * 60 * 60 * 1000  # every alias holder is looked at at least this often
ALIAS_PASS_KEY = "\x1falias-pass"  # where the time of the last full alias pass is kept (store.get_pending)
NEVER_DUE_MS = 2**62
LOG_LINES = 10  # skipped / unavailable lines in the timer function's log record
GIVEN_UP = "given_up"  # the pending kind of a version no longer retried


def registry_kind(uri: str) -> str:
    """``databricks-uc``, ``databricks``, ``azureml``, ``http`` (http/https) or the URI's scheme."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else uri.lower()
    if scheme == "https":
        return "http"
    return scheme


def listing_is_complete(uri: str) -> bool:
    """Whether ``search_model_versions`` returns a version record equal to ``get_model_version``'s
    (aliases aside): verified for open-source MLflow servers (tests/engine/test_version_reuse.py).
    Unity Catalog's search leaves tags, aliases and the model id out; Databricks workspace and
    Azure ML registries are not verified, so their versions are fetched again."""
    return registry_kind(uri) == "http"


class TokenBucket:
    """A blocking token bucket: ``rate`` tokens/s, at most ``capacity`` (default 1) saved up.

    Each ``acquire`` takes the next free slot, ``1/rate`` s after the previous one's (or now, when
    the bucket was idle), and sleeps until it: at most ``capacity - 1 + rate`` slots (rounded up)
    fall in any 1-second window; with the default capacity of 1, never more than ``rate``, the
    first second included (a capacity equal to the rate would let up to twice the rate through in
    the first second). Slots are handed out in advance, so a thread the OS wakes a few ms late
    sends a few ms after its slot without pushing the later slots back: busy, the bucket keeps to
    its rate however late the wake-ups (a bucket that counted tokens at wake-up time lost each
    wake-up's lateness, ~5 % of the rate on a loaded machine)."""

    def __init__(self, rate: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = float(rate)
        self.capacity = max(1.0, float(capacity))
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")  # the earliest free slot
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        interval = (1 + 1e-9) / self.rate  # a hair over 1/rate: float rounding never brings two slots closer
        with self._lock:
            now = self._clock()
            slot = max(self._next, now - (self.capacity - 1) * interval)  # the saved-up tokens go first
            self._next = slot + interval
        if slot > now:
            self._sleep(slot - now)


class RateLimiter:
    """A token bucket per API class (``registry``, ``tracking``, ``search``), or one for all."""

    def __init__(self, buckets: dict[str, TokenBucket]):
        self.buckets = buckets

    @classmethod
    def shared(cls, rate: float, **bucket_kwargs) -> RateLimiter:
        bucket = TokenBucket(rate, **bucket_kwargs)
        return cls({api: bucket for api in API_CLASSES})

    @classmethod
    def per_class(cls, rates: dict[str, float], **bucket_kwargs) -> RateLimiter:
        return cls({api: TokenBucket(rates[api], **bucket_kwargs) for api in API_CLASSES})

    def acquire(self, api: str) -> None:
        self.buckets[api].acquire()

    def describe(self) -> str:
        """``100/s`` (one bucket for all) or ``registry 30/s, tracking 100/s, search 5/s``."""
        if len({id(b) for b in self.buckets.values()}) == 1:
            return _rate_text(self.buckets[REGISTRY].rate)
        return ", ".join(f"{api} {_rate_text(self.buckets[api].rate)}" for api in API_CLASSES)


def _rate_text(rate: float) -> str:
    return "no limit" if rate <= 0 else f"{rate:g}/s"


def default_limiter(uri: str) -> RateLimiter:
    """The sweep's default rate limits for a registry; see the module docstring."""
    if registry_kind(uri) in ("databricks", "databricks-uc"):
        return RateLimiter.per_class(DATABRICKS_RATES)
    return RateLimiter.shared(DEFAULT_RATE)


def reconcile_deadline_seconds() -> float:
    """``EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS``: the deadline of each check of a sweep."""
    return seconds_setting("EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS", DEFAULT_RECONCILE_SECONDS)


def rate_limited_factory(limiter: RateLimiter) -> Callable[[str], RegistryClient]:
    return functools.partial(RegistryClient, before_request=limiter.acquire, deadline=reconcile_deadline_seconds())


def pending_key(model: str, version: str, target: str | None = None) -> str:
    return f"{model}\x1f{version}\x1f{target or ''}"


def _signature(report: dict) -> list:
    return sorted([f["rule_id"], f["message"]] for f in report["findings"] if not f["waived"])


def remember_unreadable(store, report: dict, now_ms: int | None = None) -> None:
    """A model-version report with an unwaived EVD-008 is checked again in an hour (by reconcile),
    hourly until it changes or for the policy's ``give_up_after_days`` since it was first seen."""
    subject = report.get("subject") or {}
    if subject.get("kind") != "model_version" or report.get("check") not in ("registration", "promotion"):
        return
    if not any(f["rule_id"] == UNREADABLE_RULE and not f["waived"] for f in report["findings"]):
        return
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    target = subject.get("alias") or subject.get("stage")
    key = pending_key(subject["model"], subject["version"], target)
    earlier = store.get_pending(subject["registry"], key) or {}
    first_ms = earlier.get("first_ms", now_ms) if earlier.get("kind") == "unreadable" else now_ms
    store.set_pending(subject["registry"], key, {
        "kind": "unreadable", "model": subject["model"], "version": subject["version"], "alias": subject.get("alias"),
        "stage": subject.get("stage"), "check": report["check"], "signature": _signature(report),
        "first_ms": first_ms}, now_ms + RECHECK_MS)


SAMPLE = 1000  # a Summary keeps the first this many report summaries, skipped and unavailable lines


@dataclass(frozen=True)
class Attempt:
    """What a sweep does about a check that failed (again) with an error worth retrying."""

    item: dict  # the pending item to keep for it (kind ``unavailable``, or ``given_up``: never due)
    due_ms: int  # when a sweep tries it again
    hours: float  # since it first failed
    report: bool = False  # an ``unverifiable`` report is due now
    give_up: bool = False  # ... the last one: the sweeps no longer retry it
    was_given_up: bool = False  # given up by an earlier sweep: nothing more to say


def next_attempt(earlier: dict | None, model: str, version: str, alias: str | None, stage: str | None, error: str,
                 now_ms: int, effective) -> Attempt:
    """The bookkeeping of a version that could not be checked: retried after 1, 2, 4 ... at most 60
    minutes; an ``unverifiable`` report once ``unverifiable_after_hours`` have passed since the first
    failure (and the retries go on); after ``give_up_after_days`` a last ``unverifiable`` report and
    no more retries (a check of it asked for later, or the version listed again because it changed,
    is tried once more: a success clears it). ``earlier``: the pending item a previous sweep kept."""
    earlier = earlier or {}
    if earlier.get("kind") == GIVEN_UP:
        return Attempt(earlier, NEVER_DUE_MS, (now_ms - earlier["first_ms"]) / 3_600_000, was_given_up=True)
    again = earlier.get("kind") == "unavailable"
    first = earlier.get("first_ms", now_ms) if again else now_ms
    attempts = (earlier.get("attempts", 0) if again else 0) + 1
    reported = again and bool(earlier.get("reported"))
    hours = (now_ms - first) / 3_600_000
    give_up = hours >= effective.give_up_after_days * 24
    report = give_up or (not reported and hours >= effective.unverifiable_after_hours)
    item = {"kind": GIVEN_UP if give_up else "unavailable", "model": model, "version": version, "alias": alias,
            "stage": stage, "first_ms": first, "attempts": attempts, "reported": reported or report,
            "error": error[:300]}
    due_ms = NEVER_DUE_MS if give_up else now_ms + min(MAX_BACKOFF_MS, 60_000 * 2 ** (attempts - 1))
    return Attempt(item, due_ms, hours, report=report, give_up=give_up)


@dataclass
class Summary:
    """What one sweep did: counts of everything, and the first :data:`SAMPLE` report summaries,
    skipped and unavailable lines (a sweep of any size holds no more; ``on_report`` of
    :func:`reconcile_registry` sees every report)."""

    registry: str
    listed: int = 0
    checked: int = 0  # versions checked now (registration)
    already: int = 0  # versions that already had a report for this policy
    promotions: int = 0  # alias/stage holders checked now
    rechecked: int = 0  # remembered checks done again (EVD-008 reports, versions that were unavailable)
    unverifiable: int = 0  # versions reported as not checkable (unavailable longer than the policy allows)
    given_up: int = 0  # of those, versions no longer retried (unavailable longer than give_up_after_days)
    skipped: list[str] = field(default_factory=list)  # vanished or malformed (the first SAMPLE)
    unavailable: list[str] = field(default_factory=list)  # could not be checked now: retried by later sweeps (the first SAMPLE)
    skipped_total: int = 0
    unavailable_total: int = 0
    reported: int = 0  # reports made (summaries of the first SAMPLE in ``reports``)
    rate_limits: str = ""  # RateLimiter.describe() of the sweep
    watermark_before: int | None = None
    watermark_after: int | None = None
    reports: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unavailable_total

    def add_report(self, report_summary: dict) -> None:
        self.reported += 1
        if len(self.reports) < SAMPLE:
            self.reports.append(report_summary)

    def add_skipped(self, text: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < SAMPLE:
            self.skipped.append(text)

    def add_unavailable(self, text: str) -> None:
        self.unavailable_total += 1
        if len(self.unavailable) < SAMPLE:
            self.unavailable.append(text)

    def line(self) -> str:
        text = (f"{self.registry}: {self.listed} versions listed, {self.checked} checked, {self.already} already reported,"
                f" {self.promotions} promotions checked")
        if self.rechecked:
            text += f", {self.rechecked} re-checked"
        if self.unverifiable:
            text += f", {self.unverifiable} reported as not checkable"
        if self.given_up:
            text += f" ({self.given_up} no longer retried)"
        if self.skipped_total:
            text += f", {self.skipped_total} skipped"
        if self.unavailable_total:
            text += (f", {self.unavailable_total} unavailable (retried by later sweeps):"
                     f" {'; '.join(self.unavailable[:3])}")
        return text

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("reports")
        out["complete"] = self.complete
        return out

    def log_fields(self, lines: int = LOG_LINES) -> dict:
        """:meth:`as_dict` with only the first ``lines`` skipped and unavailable lines: the timer
        function's log record (Application Insights keeps at most 8,192 characters a property)."""
        out = self.as_dict()
        out["skipped"], out["unavailable"] = self.skipped[:lines], self.unavailable[:lines]
        return out


def registries(services: Services) -> list[str]:
    """``EVIDENCE_GATE_REGISTRIES`` (comma separated; Azure ML workspace resource ids allowed,
    resolved by ``services.azureml_tracking_uri``), else ``MLFLOW_TRACKING_URI``."""
    raw = settings.get("EVIDENCE_GATE_REGISTRIES") or settings.get("MLFLOW_TRACKING_URI") or ""
    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        out.append(services.registry_uri(item))
    return out


def reconcile_all(services: Services, **kwargs) -> list[Summary]:
    summaries = []
    for registry in registries(services):
        try:
            summaries.append(reconcile_registry(registry, services, **kwargs))
        except EvidenceGateError as exc:  # the versions could not even be listed
            summary = Summary(registry=registry)
            summary.add_unavailable(str(exc))
            log.warning("reconcile: %s: %s", registry, exc)
            summaries.append(summary)
    if not summaries:
        log.warning("reconcile: no registry configured (EVIDENCE_GATE_REGISTRIES or MLFLOW_TRACKING_URI)")
    return summaries


def reconcile_registry(registry: str, services: Services, *, since_ms: int | None = None, model: str | None = None,
                       workers: int = DEFAULT_WORKERS, rate: float | RateLimiter | None = None,
                       progress: Callable[[int, int], None] | None = None,
                       now: Callable[[], float] = time.time, reuse_listing: bool | None = None,
                       on_report: Callable[[dict], None] | None = None) -> Summary:
    """One sweep of one registry with ``services`` (their engine, its registry clients rate-limited).
    Raises BadInput for an unusable URI and RegistryUnavailable when the versions cannot even be
    listed (the watermark stays).

    ``rate``: requests/s for all API classes together, or a :class:`RateLimiter` (None:
    :func:`default_limiter` of the registry, per class for Databricks; 0: no limit).
    ``reuse_listing``: check versions from their listed record (None: :func:`listing_is_complete`).
    ``on_report``: called with the summary of every report the sweep makes (the Summary keeps the
    first :data:`SAMPLE`). At most ``2 * workers`` checks are submitted at a time, and the listed
    records are kept packed (:class:`_Listing`): the sweep's memory does not grow with the
    registry."""
    from shared import pipeline

    registry = services.registry_uri(registry)  # a workspace resource id: its tracking URI, as Event Grid's checks
    if isinstance(rate, RateLimiter):
        limiter = rate
    else:
        limiter = default_limiter(registry) if rate is None else RateLimiter.shared(rate)
    if reuse_listing is None:
        reuse_listing = listing_is_complete(registry)
    engine = dataclasses.replace(services.engine, client_factory=rate_limited_factory(limiter))
    services = dataclasses.replace(services, engine=engine)
    store = engine.store
    # One client (and so one deadline) per listing request and per model fetched: a long listing
    # of a large registry never runs into the deadline meant for one check.
    def client() -> RegistryClient:
        return engine.client_factory(registry)

    shown = client().uri
    summary = Summary(registry=shown, rate_limits=limiter.describe(), watermark_before=store.watermark(shown))
    if since_ms is not None:
        lower = since_ms
    elif summary.watermark_before is not None:
        lower = summary.watermark_before - OVERLAP_MS
    else:
        lower = None  # first sweep: everything

    listing = _changed_versions(client, lower, model, keep_records=reuse_listing)
    summary.listed = len(listing.keys)
    # The registered models first: their aliases say which listed records are incomplete (an
    # open-source server's listing leaves the aliases out), and they give the promotion holders.
    # The models listing carries each model's aliases, so changed models cost no request of their
    # own; setting an alias changes no timestamp (verified for open-source MLflow), so once every
    # ALIAS_PASS_MS the listing goes back to the start: every alias holder is seen at least daily.
    last_pass = (store.get_pending(shown, ALIAS_PASS_KEY) or {}).get("at_ms", 0)
    full_pass = model is None and (lower is None or last_pass < int(now() * 1000) - ALIAS_PASS_MS)
    registered, unlisted = ({}, set()) if model is not None else _changed_models(client, None if full_pass else lower)
    if full_pass and since_ms is None:  # remembered as a pending item that is never due
        store.set_pending(shown, ALIAS_PASS_KEY, {"kind": "alias_pass", "at_ms": int(now() * 1000)}, NEVER_DUE_MS)
    models = ({name for name, *_ in listing.keys} | unlisted) - set(registered)
    if model is not None:
        models.add(model)
    for name in sorted(models):
        try:
            registered[name] = client().get_registered_model(name)
        except RegistryUnavailable as exc:  # its holders are checked by a later sweep (the model is listed again)
            summary.add_unavailable(f"{name}: {exc}")
        except Exception as exc:  # NotFoundInRegistry (deleted meanwhile), BadInput
            summary.add_skipped(f"{name}: {exc}")
    listed = {}  # (model, version) -> the listed record, while that version's check runs

    # (model, version, page of its listed record or None: fetched again) of each version to check
    todo: list[tuple[str, str, int | None]] = []
    for name, version, _, status, page in listing.keys:
        digest = engine.policy.for_model(name).digest
        if store.has_report(shown, name, version, digest, "registration"):
            summary.already += 1
            continue
        rm = registered.get(name)
        reusable = (page is not None and rm is not None and status != "PENDING_REGISTRATION"
                    and version not in rm.aliases.values())
        todo.append((name, version, page if reusable else None))
    newest = listing.newest
    listing.keys = []  # what is left of the listing: the packed records of the versions to check
    started = now()
    now_ms = int(started * 1000)
    total = len(todo)
    done = 0
    window = 2 * max(1, workers)  # checks submitted and not yet handed back, at most

    def event(action: str, name: str, version: str, alias=None, stage=None, prefix="reconcile") -> RegistryEvent:
        target = alias or stage or ""
        return RegistryEvent(source=SOURCE, event_type=action, action=action, registry=registry, model=name,
                             version=version, alias=alias, stage=stage,
                             event_id=f"{prefix}:{name}:{version}:{target}".rstrip(":"))

    def run(ev: RegistryEvent):
        return pipeline.process(ev, services, version_evidence=listed.get((ev.model, ev.version)))

    def delivered(report: dict, stored: bool) -> None:
        made = pipeline.summary(report, stored)
        summary.add_report(made)
        if on_report is not None:
            on_report(made)

    def could_not_check(name: str, version: str, alias, stage, exc: EvidenceGateError, what: str) -> None:
        """Remember a check that failed with an error worth retrying (:func:`next_attempt`)."""
        key = pending_key(name, version, alias or stage)
        attempt = next_attempt(store.get_pending(shown, key), name, version, alias, stage, str(exc), now_ms,
                               engine.policy.for_model(name))
        if attempt.was_given_up:  # listed again (or asked for) and still failing: stays given up
            summary.add_skipped(f"{what}: no longer retried (unavailable since {_iso(attempt.item['first_ms'])}): {exc}")
            return
        if attempt.report:
            report = engine.unverifiable(registry, name, version, reason=str(getattr(exc, "reason", exc)),
                                         hours=attempt.hours, alias=alias, stage=stage, retried=not attempt.give_up,
                                         trigger=_trigger_for(event("unverifiable", name, version, alias, stage,
                                                                    "reconcile-given-up" if attempt.give_up else "reconcile")))
            delivered(report, pipeline.deliver(report, report["trigger"].get("event_id"), services))
            summary.unverifiable += 1
        if attempt.give_up:
            log.warning("reconcile: %s: %s no longer retried: unavailable for %.0f h over %d attempts (%s)",
                        shown, what, attempt.hours, attempt.item["attempts"], exc)
            summary.given_up += 1
            summary.add_skipped(f"{what}: no longer retried after {attempt.hours:.0f} h unavailable: {exc}")
        else:
            summary.add_unavailable(f"{what}: {exc}")
        store.set_pending(shown, key, attempt.item, attempt.due_ms)

    def finished(name: str, version: str, alias, stage, outcome) -> None:
        for made in outcome.reports:
            summary.add_report(made)
            if on_report is not None:
                on_report(made)
        if outcome.reports:  # checked: no longer "unavailable" (a report with EVD-008 is remembered by deliver)
            key = pending_key(name, version, alias or stage)
            if (store.get_pending(shown, key) or {}).get("kind") in ("unavailable", GIVEN_UP):
                store.clear_pending(shown, key)

    def registrations():
        """The versions to check, each with its listed record (where reused) while it is checked."""
        for name, version, page in todo:
            if page is not None:
                listed[(name, version)] = listing.record(page, name, version)
            yield name, version

    def check_registration(item):
        return run(event(REGISTRATION, *item))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="reconcile") as pool:
        for (name, version), future in _windowed(pool, check_registration, registrations(), window):
            listed.pop((name, version), None)
            try:
                outcome = future.result()
                finished(name, version, None, None, outcome)
                if outcome.reports:
                    summary.checked += 1
                else:
                    summary.add_skipped(f"{name} v{version}: {outcome.reason}")
            except EvidenceGateError as exc:
                if exc.retry:
                    could_not_check(name, version, None, None, exc, f"{name} v{version}")
                else:  # BadInput for one version: report, don't block
                    summary.add_skipped(f"{name} v{version}: {exc}")
            done += 1
            if progress:
                progress(done, total)

        # Protected alias / stage holders of every model seen in this sweep.
        holders = []
        for name, rm in sorted(registered.items()):
            effective = engine.policy.for_model(name)
            for alias, version in sorted(rm.aliases.items()):
                if effective.is_protected(alias, None):
                    holders.append((name, version, alias, None))
            for stage, version in sorted(rm.latest_versions.items()):
                if effective.is_protected(None, stage):
                    holders.append((name, version, None, stage))
        pending = [h for h in holders
                   if not store.has_report(shown, h[0], h[1], engine.policy.for_model(h[0]).digest, "promotion")
                   and (store.get_pending(shown, pending_key(h[0], h[1], h[2] or h[3])) or {}).get("kind") != GIVEN_UP]

        def check_promotion(holder):
            return run(event(PROMOTION, *holder))

        for (name, version, alias, stage), future in _windowed(pool, check_promotion, pending, window):
            try:
                outcome = future.result()
                finished(name, version, alias, stage, outcome)
                summary.promotions += 1 if outcome.reports else 0
            except EvidenceGateError as exc:
                if exc.retry:
                    could_not_check(name, version, alias, stage, exc, f"{name} v{version} ({alias or stage})")
                else:
                    summary.add_skipped(f"{name} v{version} ({alias or stage}): {exc}")

        # Checks remembered by earlier sweeps and deliveries that are due now, but for those just done.
        due = [(key, item) for key, item in store.due_pending(shown, now_ms) if model is None or item["model"] == model]
        due_targets = {(item["model"], item["version"], item.get("alias") or item.get("stage")) for _, item in due}
        checked_now = ({(n, v, None) for n, v, _ in todo if (n, v, None) in due_targets}
                       | {(n, v, a or s) for n, v, a, s in pending})
        due = [(key, item) for key, item in due
               if (item["model"], item["version"], item.get("alias") or item.get("stage")) not in checked_now]

        def recheck(entry):
            return _recheck(engine, registry, entry[1], now_ms)

        for (key, item), future in _windowed(pool, recheck, due, window):
            name, version, alias, stage = item["model"], item["version"], item.get("alias"), item.get("stage")
            try:
                report = future.result()
            except EvidenceGateError as exc:
                if exc.retry:
                    could_not_check(name, version, alias, stage, exc, f"{name} v{version} (re-check)")
                else:  # gone meanwhile, or refused: nothing left to come back to
                    summary.add_skipped(f"{name} v{version} (re-check): {exc}")
                    store.clear_pending(shown, key)
                continue
            summary.rechecked += 1
            if item["kind"] == "unreadable" and _signature(report) == item.get("signature"):
                days = engine.policy.for_model(name).give_up_after_days
                if now_ms - item.get("first_ms", now_ms) >= days * 86_400_000:  # bounded: its report stands
                    store.clear_pending(shown, key)
                    summary.add_skipped(f"{name} v{version}: evidence still unreadable after {days} days: no longer"
                                        f" re-checked hourly (a new event or `evidence-gate reconcile --model {name}`"
                                        " checks it again)")
                    continue
                store.set_pending(shown, key, item, now_ms + RECHECK_MS)  # the same: not delivered again
                continue
            store.clear_pending(shown, key)
            delivered(report, pipeline.deliver(report, report["trigger"].get("event_id"), services))

    if newest is not None and since_ms is None and model is None and newest > (summary.watermark_before or 0):
        store.set_watermark(shown, newest)
    summary.watermark_after = store.watermark(shown)
    lag = None
    if summary.watermark_after is not None:
        lag = max(0.0, started - summary.watermark_after / 1000)
    telemetry.record_reconcile(shown, summary.checked + summary.promotions, _iso(summary.watermark_after), lag)
    return summary  # the timer function logs it, the CLI prints it


def _trigger_for(ev: RegistryEvent):
    from shared.report import Trigger

    return Trigger(ev.source, ev.event_type, ev.event_id, ev.event_time)


def _recheck(engine, registry: str, item: dict, now_ms: int) -> dict:
    """Check a remembered version again (its own event id, so it is a new report)."""
    alias, stage = item.get("alias"), item.get("stage")
    target = alias or stage or ""
    ev = RegistryEvent(source=SOURCE, event_type=PROMOTION if target else REGISTRATION,
                       action=PROMOTION if target else REGISTRATION, registry=registry, model=item["model"],
                       version=item["version"], alias=alias, stage=stage,
                       event_id=f"reconcile-recheck:{item['model']}:{item['version']}:{target}:{now_ms}")
    return engine.check_version(registry, item["model"], item["version"], alias=alias, stage=stage,
                                trigger=_trigger_for(ev))


class _Listing:
    """The versions a sweep listed, in listing order: ``keys``, (name, version, last-updated ms,
    status, page of its record or None) of each, and, when ``keep_records``, the records packed a
    page at a time (pickled and compressed: ~0.1 KB a version instead of ~1 KB as objects, so
    10,000 listed versions hold ~1 MB, not ~10), each page unpacked once, as its versions' checks
    start (in listing order)."""

    def __init__(self, keep_records: bool):
        self.keep_records = keep_records
        self.keys: list[tuple[str, str, int, str, int | None]] = []
        self.newest: int | None = None
        self._pages: list[bytes] = []
        self._unpacked: tuple[int | None, dict] = (None, {})

    def add(self, page: list[tuple]) -> None:
        number = len(self._pages) if self.keep_records else None
        if self.keep_records:
            self._pages.append(zlib.compress(pickle.dumps([mv for mv, _ in page], pickle.HIGHEST_PROTOCOL), 1))
        for mv, ts in page:
            self.keys.append((sys.intern(mv.name), str(mv.version), ts, sys.intern(mv.status or ""), number))
            self.newest = ts if self.newest is None else max(self.newest, ts)

    def record(self, page: int, name: str, version: str):
        """The listed record of one version (once: it is dropped from the unpacked page)."""
        if self._unpacked[0] != page:
            records = pickle.loads(zlib.decompress(self._pages[page]))
            self._unpacked = (page, {(mv.name, str(mv.version)): mv for mv in records})
            self._pages[page] = b""  # versions are checked in listing order: this page is not needed again
        return self._unpacked[1].pop((name, version))


def _changed_versions(client: Callable[[], RegistryClient], lower: int | None, model: str | None,
                      keep_records: bool = False) -> _Listing:
    filter_string = None
    if model is not None:
        filter_string = "name='{}'".format(model.replace("'", "\\'"))
    listing, seen, token = _Listing(keep_records), set(), None
    while True:
        page, token = client().search_model_versions(filter_string, token, updated_since=lower)
        stop, fresh = False, []
        for mv, ts in page:
            if lower is not None and ts < lower:
                stop = True
                break
            key = (sys.intern(mv.name), str(mv.version))
            if key not in seen:
                seen.add(key)
                fresh.append((mv, ts))
        listing.add(fresh)
        if stop or not token:
            return listing


def _windowed(pool: ThreadPoolExecutor, fn: Callable, items: Iterable, window: int) -> Iterator[tuple]:
    """``fn(item)`` on ``pool`` for each of ``items``, with at most ``window`` submitted and not yet
    handed back (``items`` is read as room frees up); yields (item, its done future) as each ends."""
    items = iter(items)
    running: dict[Future, object] = {}
    while True:
        for item in itertools.islice(items, window - len(running)):
            running[pool.submit(fn, item)] = item
        if not running:
            return
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            yield running.pop(future), future


def _changed_models(client: Callable[[], RegistryClient], lower: int | None) -> tuple[dict, set[str]]:
    """Registered models updated since ``lower`` (all of them when None), from the listing (most
    recently updated first, stopping at ``lower``): the records by name, and the names of those the
    listing gives by name only (to be fetched). Registries that cannot order the search fall back
    to the versions' models."""
    found, names, token = {}, set(), None
    try:
        while True:
            page, token = client().search_registered_models(token)
            for rm, updated in page:
                if lower is not None and updated < lower:
                    return found, names
                if isinstance(rm, str):
                    names.add(rm)
                else:
                    found[rm.name] = rm
            if not token:
                return found, names
    except BadInput as exc:
        log.info("reconcile: cannot list registered models by update time (%s)", exc)
        return found, names


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_duration(text: str) -> float:
    """``30m``, ``24h``, ``7d`` (also ``90s``, ``2w``) as seconds; BadInput otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = (text or "").strip().lower()
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) <= 0:
        raise BadInput(f"'{text}' is not a duration like 30m, 24h or 7d")
    return int(value[:-1]) * units[value[-1]]
