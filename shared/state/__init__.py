"""The engine's memory behind one interface, :class:`StateStore`, with two implementations:

- :class:`shared.sinks.store.ReportStore`: SQLite at ``EVIDENCE_GATE_STORE``, the embedded default
  on a developer machine (one process, or several on one disk);
- :class:`shared.state.table.TableStateStore`: Azure Table Storage, shared by every instance of a
  scaled-out Function App (docs/state.md).

:func:`open_state` picks one from the settings of the connection ``EVIDENCE_GATE_STATE``
(Functions identity-based connection convention): ``EVIDENCE_GATE_STATE`` itself is a connection
string (Azurite, or an account key); ``EVIDENCE_GATE_STATE__tableServiceUri`` (+ ``__credential``
``managedidentity``, ``__clientId``) is the identity-based connection used in Azure. Neither set
means SQLite, except inside an Azure Functions host, where a local file would be one instance's
private, short-lived memory: there :func:`open_state` refuses with a :class:`ConfigurationError`.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Protocol

from shared import settings
from shared.errors import ConfigurationError

log = logging.getLogger("evidence_gate.state")

STATE_CONNECTION = settings.STATE_CONNECTION

NOT_SHARED = (f"no shared state store configured: this is an Azure Functions host, where a local SQLite file would be"
              f" lost on recycle and not shared between instances (false GOV-006, lost watermarks). Set"
              f" {STATE_CONNECTION}__tableServiceUri (https://<account>.table.core.windows.net) with"
              f" {STATE_CONNECTION}__credential=managedidentity and {STATE_CONNECTION}__clientId, or"
              f" {STATE_CONNECTION} to a storage connection string")


class StateStore(Protocol):
    """Everything the engine remembers. One report per ``report_id``: saving it again keeps the
    first. Registry identities are passed as ``shared.evidence.registry.display_uri`` gives them."""

    # -- reports and their indexes -----------------------------------------------------------
    def save(self, report: dict) -> bool:
        """Store the report; False when a report with this id was already stored."""

    def get(self, report_id: str) -> dict | None: ...

    def query(self, *, model: str | None = None, version: str | None = None, verdict: str | None = None,
              since: datetime | None = None, limit: int = 1000) -> list[dict]:
        """Reports newest-stored first, filtered."""

    def reports_for_event(self, source: str, event_type: str, event_id: str) -> list[dict]:
        """The reports made for one event, oldest first (a redelivery finds its first reports)."""

    def count(self) -> int: ...

    def has_report(self, registry: str, model: str, version: str, policy_digest: str, check: str) -> bool: ...

    # -- notification state (the local Teams notifier) ---------------------------------------
    def unnotified(self, limit: int = 50) -> list[dict]:
        """Stored non-passing reports not yet posted, oldest first."""

    def mark_notified(self, report_id: str) -> None: ...

    # -- history read by the rules (shared.evidence.collect.History) --------------------------
    def has_passing_registration(self, registry: str, model: str, version: str) -> bool: ...

    def has_passing_report(self, registry: str, model: str, version: str) -> bool: ...

    def passed_versions(self, registry: str, model: str) -> list[str]: ...

    def record_holders(self, registry: str, model: str, holders: dict[str, str]) -> None:
        """Remember which version holds each alias/stage (``target``) now."""

    def previous_holder(self, registry: str, model: str, target: str, exclude_version: str) -> str | None: ...

    # -- reconcile -----------------------------------------------------------------------------
    def watermark(self, registry: str) -> int | None: ...

    def set_watermark(self, registry: str, value: int) -> None:
        """Move the watermark forward to ``value``; never backwards, even with concurrent sweeps."""

    # -- checks reconcile comes back to (versions that stayed unavailable, EVD-008 reports) -----
    def set_pending(self, registry: str, key: str, item: dict, due_ms: int) -> None:
        """Remember (or replace) ``item`` under ``key``, due at ``due_ms``."""

    def due_pending(self, registry: str, now_ms: int, limit: int = 500) -> list[tuple[str, dict]]:
        """(key, item) of the items due by ``now_ms``, the longest overdue first."""

    def get_pending(self, registry: str, key: str) -> dict | None: ...

    def clear_pending(self, registry: str, key: str) -> None: ...

    # -- leases (the intake: one instance checks an event at a time) ---------------------------
    def claim(self, name: str, owner: str, until_ms: int, now_ms: int) -> bool:
        """Take the lease ``name`` for ``owner`` until ``until_ms``: True unless another owner holds
        it past ``now_ms``. Atomic across every instance sharing the store."""

    def release(self, name: str, owner: str) -> None:
        """Give the lease up (only ``owner``'s; an expired or taken-over lease is left alone)."""


def in_functions_host() -> bool:
    """Running inside an Azure Functions host in Azure (not Core Tools on a laptop). These are the
    platform's own environment variables, not Evidence Gate settings."""
    env = os.environ
    if env.get("WEBSITE_INSTANCE_ID"):
        return True
    return bool(env.get("FUNCTIONS_WORKER_RUNTIME") and (env.get("WEBSITE_SITE_NAME") or env.get("CONTAINER_NAME")))


def shared_store_configured() -> bool:
    return bool(settings.get(STATE_CONNECTION) or settings.get(f"{STATE_CONNECTION}__tableServiceUri"))


def settings_key() -> tuple:
    """The settings :func:`open_state` reads (the pipeline keeps one engine per distinct value)."""
    names = (STATE_CONNECTION, f"{STATE_CONNECTION}__tableServiceUri", f"{STATE_CONNECTION}__credential",
             f"{STATE_CONNECTION}__clientId", "EVIDENCE_GATE_STATE_TABLE", "EVIDENCE_GATE_STORE")
    return tuple(settings.get(n) for n in names)


def open_state(sqlite_path: str | None = None) -> StateStore:
    """The state store the settings ask for: Table Storage when ``EVIDENCE_GATE_STATE`` is
    configured, else SQLite at ``sqlite_path`` (default ``EVIDENCE_GATE_STORE``); in an Azure
    Functions host without a shared store, :class:`ConfigurationError`."""
    if shared_store_configured():
        from shared.state.table import TableStateStore

        return TableStateStore.from_settings()
    if in_functions_host():
        raise ConfigurationError(NOT_SHARED)
    from shared.sinks.store import ReportStore

    return ReportStore(sqlite_path)


def log_configuration() -> None:
    """At start-up: say when checks will be refused for want of a shared store."""
    if in_functions_host() and not shared_store_configured():
        log.error("%s; every check is refused (503) until it is set", NOT_SHARED)
