"""The reconcile sweep (timer function ``reconcile`` and ``evidence-gate reconcile``).

For each registry: list the model versions changed since the store's watermark (newest-updated
first, with an overlap margin), check every one that has no registration report for the current
policy digest, and check the holders of protected aliases (and protected stages) as promotions
when no promotion report exists for that digest. This is how Unity Catalog models (no webhooks)
and lost webhook deliveries are covered.

- Bounded: ``workers`` threads (default 4) and a token bucket on every registry request (default
  20 requests/s, half of Databricks' ~40 registry requests/s).
- The watermark only moves past versions that were checked: a version whose registry was
  unavailable (or still pending registration) holds it back, and the next sweep retries it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared import settings, telemetry
from shared.errors import BadInput, EvidenceGateError, RegistryUnavailable
from shared.evidence.registry import RegistryClient
from shared.sources import PROMOTION, REGISTRATION, RegistryEvent

log = logging.getLogger("evidence_gate.reconcile")

SOURCE = "reconcile"
OVERLAP_MS = 5 * 60 * 1000  # versions updated just before the watermark are listed again
DEFAULT_WORKERS = 4
DEFAULT_RATE = 20.0  # registry requests per second


class TokenBucket:
    """A simple blocking token bucket (``rate`` tokens/s, bursts up to ``capacity``)."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


def rate_limited_factory(bucket: TokenBucket) -> Callable[[str], RegistryClient]:
    return functools.partial(RegistryClient, before_request=bucket.acquire)


@dataclass
class Summary:
    registry: str
    listed: int = 0
    checked: int = 0  # versions checked now (registration)
    already: int = 0  # versions that already had a report for this policy
    promotions: int = 0  # alias/stage holders checked now
    skipped: list[str] = field(default_factory=list)  # vanished or malformed
    unavailable: list[str] = field(default_factory=list)  # transient failures: retried next sweep
    watermark_before: int | None = None
    watermark_after: int | None = None
    reports: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unavailable

    def line(self) -> str:
        text = (f"{self.registry}: {self.listed} versions listed, {self.checked} checked, {self.already} already reported,"
                f" {self.promotions} promotions checked")
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        if self.unavailable:
            text += f", {len(self.unavailable)} unavailable (retried next sweep): {'; '.join(self.unavailable[:3])}"
        return text

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("reports")
        out["complete"] = self.complete
        return out


def registries() -> list[str]:
    """``EVIDENCE_GATE_REGISTRIES`` (comma separated; Azure ML workspace resource ids allowed),
    else ``MLFLOW_TRACKING_URI``."""
    raw = settings.get("EVIDENCE_GATE_REGISTRIES") or settings.get("MLFLOW_TRACKING_URI") or ""
    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item.lower().startswith("/subscriptions/"):
            from shared.sources.azureml import azureml_tracking_uri

            item = azureml_tracking_uri(item)
        out.append(item)
    return out


def reconcile_all(**kwargs) -> list[Summary]:
    summaries = []
    for registry in registries():
        try:
            summaries.append(reconcile_registry(registry, **kwargs))
        except (BadInput, RegistryUnavailable) as exc:
            summary = Summary(registry=registry)
            summary.unavailable.append(str(exc))
            log.warning("reconcile: %s: %s", registry, exc)
            summaries.append(summary)
    if not summaries:
        log.warning("reconcile: no registry configured (EVIDENCE_GATE_REGISTRIES or MLFLOW_TRACKING_URI)")
    return summaries


def reconcile_registry(registry: str, *, since_ms: int | None = None, model: str | None = None,
                       workers: int = DEFAULT_WORKERS, rate: float = DEFAULT_RATE,
                       progress: Callable[[int, int], None] | None = None, engine=None,
                       now: Callable[[], float] = time.time) -> Summary:
    """One sweep of one registry. Raises BadInput for an unusable URI and RegistryUnavailable when
    the versions cannot even be listed (the watermark stays)."""
    from shared import pipeline

    base = engine or pipeline.get_engine()
    engine = dataclasses.replace(base, client_factory=rate_limited_factory(TokenBucket(rate)))
    store = engine.store
    client = engine.client_factory(registry)
    shown = client.uri
    summary = Summary(registry=shown, watermark_before=store.watermark(shown))
    if since_ms is not None:
        lower = since_ms
    elif summary.watermark_before is not None:
        lower = summary.watermark_before - OVERLAP_MS
    else:
        lower = None  # first sweep: everything

    versions = _changed_versions(client, lower, model)
    summary.listed = len(versions)
    models = {mv.name for mv, _ in versions}
    if model is None:
        models |= _changed_models(client, lower)
    else:
        models.add(model)

    todo = []
    for mv, ts in versions:
        digest = engine.policy.for_model(mv.name).digest
        if store.has_report(shown, mv.name, mv.version, digest, "registration"):
            summary.already += 1
        else:
            todo.append((mv.name, mv.version, ts))
    started = now()
    failed_ts: list[int] = []
    promotion_failed = False
    lock = threading.Lock()
    total = len(todo)
    done = 0

    def event(action: str, name: str, version: str, alias=None, stage=None) -> RegistryEvent:
        target = alias or stage or ""
        return RegistryEvent(source=SOURCE, event_type=action, action=action, registry=registry, model=name,
                             version=version, alias=alias, stage=stage,
                             event_id=f"reconcile:{name}:{version}:{target}".rstrip(":"))

    def run(ev: RegistryEvent):
        return pipeline.process(ev, engine=engine)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="reconcile") as pool:
        futures = {pool.submit(run, event(REGISTRATION, name, version)): (name, version, ts) for name, version, ts in todo}
        for future in as_completed(futures):
            name, version, ts = futures[future]
            try:
                outcome = future.result()
                summary.reports.extend(outcome.reports)
                if outcome.reports:
                    summary.checked += 1
                else:
                    summary.skipped.append(f"{name} v{version}: {outcome.reason}")
            except RegistryUnavailable as exc:
                summary.unavailable.append(f"{name} v{version}: {exc}")
                failed_ts.append(ts)
            except EvidenceGateError as exc:  # BadInput / PolicyError for one version: report, don't block
                summary.skipped.append(f"{name} v{version}: {exc}")
            with lock:
                done += 1
            if progress:
                progress(done, total)

        # Protected alias / stage holders of every model seen in this sweep.
        holders = []
        for name in sorted(models):
            try:
                rm = client.get_registered_model(name)
            except RegistryUnavailable as exc:
                summary.unavailable.append(f"{name}: {exc}")
                promotion_failed = True
                continue
            except Exception as exc:  # NotFoundInRegistry (deleted meanwhile), BadInput
                summary.skipped.append(f"{name}: {exc}")
                continue
            effective = engine.policy.for_model(name)
            for alias, version in sorted(rm.aliases.items()):
                if effective.is_protected(alias, None):
                    holders.append((name, version, alias, None))
            for stage, version in sorted(rm.latest_versions.items()):
                if effective.is_protected(None, stage):
                    holders.append((name, version, None, stage))
        pending = [h for h in holders
                   if not store.has_report(shown, h[0], h[1], engine.policy.for_model(h[0]).digest, "promotion")]
        futures = {pool.submit(run, event(PROMOTION, name, version, alias, stage)): (name, version, alias or stage)
                   for name, version, alias, stage in pending}
        for future in as_completed(futures):
            name, version, target = futures[future]
            try:
                outcome = future.result()
                summary.reports.extend(outcome.reports)
                summary.promotions += 1 if outcome.reports else 0
            except RegistryUnavailable as exc:
                summary.unavailable.append(f"{name} v{version} ({target}): {exc}")
                promotion_failed = True
            except EvidenceGateError as exc:
                summary.skipped.append(f"{name} v{version} ({target}): {exc}")

    newest = max((ts for _, ts in versions), default=None)
    if failed_ts:
        candidate = min(failed_ts) - 1
    elif promotion_failed:
        candidate = None
    else:
        candidate = newest
    if candidate is not None and since_ms is None and model is None and candidate > (summary.watermark_before or 0):
        store.set_watermark(shown, candidate)
    summary.watermark_after = store.watermark(shown)
    lag = None
    if summary.watermark_after is not None:
        lag = max(0.0, started - summary.watermark_after / 1000)
    telemetry.record_reconcile(shown, summary.checked + summary.promotions, _iso(summary.watermark_after), lag)
    log.info("reconcile: %s", summary.line())
    return summary


def _changed_versions(client: RegistryClient, lower: int | None, model: str | None) -> list[tuple]:
    filter_string = None
    if model is not None:
        filter_string = "name='{}'".format(model.replace("'", "\\'"))
    out, seen, token = [], set(), None
    while True:
        page, token = client.search_model_versions(filter_string, token)
        stop = False
        for mv, ts in page:
            if lower is not None and ts < lower:
                stop = True
                break
            if (mv.name, mv.version) not in seen:
                seen.add((mv.name, mv.version))
                out.append((mv, ts))
        if stop or not token:
            return out


def _changed_models(client: RegistryClient, lower: int | None) -> set[str]:
    """Registered models updated since ``lower`` (an alias set on an old version changes the model,
    not the version). Registries that cannot order the search fall back to the versions' models."""
    names, token = set(), None
    try:
        while True:
            page, token = client.search_registered_models(token)
            for name, updated in page:
                if lower is not None and updated < lower:
                    return names
                names.add(name)
            if not token:
                return names
    except BadInput as exc:
        log.info("reconcile: %s cannot list registered models by update time (%s)", client.uri, exc)
        return names


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
