"""The local report store (SQLite): the embedded default sink when Service Bus is not configured,
and the engine's memory (alias holders, passing reports, reconcile watermarks, and the checks
reconcile has to come back to: versions that stayed unavailable, reports with EVD-008). One of the
two :class:`shared.state.StateStore` implementations: the default outside Azure (docs/state.md).

One report per ``report_id``: saving the same report twice keeps the first.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime

from shared import settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,
    registry TEXT NOT NULL,
    model TEXT,
    version TEXT,
    run_id TEXT,
    alias TEXT,
    stage TEXT,
    check_kind TEXT NOT NULL,
    verdict TEXT NOT NULL,
    source TEXT NOT NULL,
    event_type TEXT,
    event_id TEXT,
    policy_digest TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    notified INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_subject ON reports (registry, model, version);
CREATE INDEX IF NOT EXISTS reports_generated ON reports (generated_at);
CREATE INDEX IF NOT EXISTS reports_event ON reports (source, event_type, event_id);
CREATE TABLE IF NOT EXISTS holders (
    registry TEXT NOT NULL,
    model TEXT NOT NULL,
    target TEXT NOT NULL,
    version TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    seq INTEGER PRIMARY KEY AUTOINCREMENT
);
CREATE INDEX IF NOT EXISTS holders_target ON holders (registry, model, target);
CREATE TABLE IF NOT EXISTS watermarks (
    registry TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    registry TEXT NOT NULL,
    item_key TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (registry, item_key)
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ReportStore:
    def __init__(self, path: str | None = None):
        self.path = path or settings.get("EVIDENCE_GATE_STORE")
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    # -- reports -----------------------------------------------------------------------------
    def save(self, report: dict) -> bool:
        """Store the report; False when a report with this id was already stored."""
        s, t = report["subject"], report["trigger"]
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO reports (report_id, registry, model, version, run_id, alias, stage, check_kind,"
            " verdict, source, event_type, event_id, policy_digest, generated_at, stored_at, body)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (report["report_id"], s["registry"], s.get("model"), s.get("version"), s.get("run_id"), s.get("alias"),
             s.get("stage"), report.get("check", ""), report["verdict"], t["source"], t.get("event_type"),
             t.get("event_id"), report["policy"]["digest"], report["generated_at"], _now(),
             json.dumps(report, sort_keys=True)),
        )
        return cur.rowcount == 1

    def get(self, report_id: str) -> dict | None:
        row = self._conn().execute("SELECT body FROM reports WHERE report_id = ?", (report_id,)).fetchone()
        return json.loads(row["body"]) if row else None

    def query(self, *, model: str | None = None, version: str | None = None, verdict: str | None = None,
              since: datetime | None = None, limit: int = 1000) -> list[dict]:
        clauses, args = [], []
        for column, value in (("model", model), ("version", version), ("verdict", verdict)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            clauses.append("stored_at >= ?")
            args.append(since.astimezone(UTC).isoformat(timespec="microseconds"))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn().execute(
            f"SELECT body FROM reports {where} ORDER BY stored_at DESC LIMIT ?", (*args, limit)
        ).fetchall()
        return [json.loads(r["body"]) for r in rows]

    def reports_for_event(self, source: str, event_type: str, event_id: str) -> list[dict]:
        """The reports made for one event (a redelivery finds its first delivery's reports here)."""
        rows = self._conn().execute(
            "SELECT body FROM reports WHERE source = ? AND event_type = ? AND event_id = ? ORDER BY stored_at",
            (source, event_type, event_id)).fetchall()
        return [json.loads(r["body"]) for r in rows]

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM reports").fetchone()[0]

    def has_report(self, registry: str, model: str, version: str, policy_digest: str, check: str) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM reports WHERE registry=? AND model=? AND version=? AND policy_digest=? AND check_kind=?"
            " LIMIT 1", (registry, model, version, policy_digest, check)).fetchone()
        return row is not None

    def unnotified(self, limit: int = 50) -> list[dict]:
        rows = self._conn().execute(
            "SELECT body FROM reports WHERE notified = 0 AND verdict != 'pass' ORDER BY stored_at LIMIT ?", (limit,)
        ).fetchall()
        return [json.loads(r["body"]) for r in rows]

    def mark_notified(self, report_id: str) -> None:
        self._conn().execute("UPDATE reports SET notified = 1 WHERE report_id = ?", (report_id,))

    # -- the engine's memory (shared.evidence.collect.History) -------------------------------
    def has_passing_registration(self, registry: str, model: str, version: str) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM reports WHERE registry=? AND model=? AND version=? AND check_kind='registration'"
            " AND verdict IN ('pass','warn') LIMIT 1", (registry, model, version)).fetchone()
        return row is not None

    def has_passing_report(self, registry: str, model: str, version: str) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM reports WHERE registry=? AND model=? AND version=? AND check_kind IN"
            " ('registration','promotion') AND verdict IN ('pass','warn') LIMIT 1", (registry, model, version)).fetchone()
        return row is not None

    def passed_versions(self, registry: str, model: str) -> list[str]:
        rows = self._conn().execute(
            "SELECT DISTINCT version FROM reports WHERE registry=? AND model=? AND check_kind='registration'"
            " AND verdict IN ('pass','warn')", (registry, model)).fetchall()
        return [r["version"] for r in rows]

    def record_holders(self, registry: str, model: str, holders: dict[str, str]) -> None:
        conn = self._conn()
        for target, version in holders.items():
            last = conn.execute(
                "SELECT version FROM holders WHERE registry=? AND model=? AND target=? ORDER BY seq DESC LIMIT 1",
                (registry, model, target)).fetchone()
            if last is None or last["version"] != version:
                conn.execute("INSERT INTO holders (registry, model, target, version, observed_at) VALUES (?,?,?,?,?)",
                             (registry, model, target, version, _now()))

    def previous_holder(self, registry: str, model: str, target: str, exclude_version: str) -> str | None:
        row = self._conn().execute(
            "SELECT version FROM holders WHERE registry=? AND model=? AND target=? AND version != ?"
            " ORDER BY seq DESC LIMIT 1", (registry, model, target, exclude_version)).fetchone()
        return row["version"] if row else None

    # -- reconcile ---------------------------------------------------------------------------
    def watermark(self, registry: str) -> int | None:
        row = self._conn().execute("SELECT value FROM watermarks WHERE registry=?", (registry,)).fetchone()
        return row["value"] if row else None

    def set_watermark(self, registry: str, value: int) -> None:
        self._conn().execute(
            "INSERT INTO watermarks (registry, value) VALUES (?, ?) ON CONFLICT(registry) DO UPDATE SET value ="
            " MAX(value, excluded.value)", (registry, value))

    # -- checks to come back to (reconcile) -----------------------------------------------------
    def set_pending(self, registry: str, key: str, item: dict, due_ms: int) -> None:
        """Remember (or update) a check the sweep comes back to at ``due_ms``."""
        self._conn().execute(
            "INSERT INTO pending (registry, item_key, due_ms, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (registry, item_key) DO UPDATE SET due_ms = excluded.due_ms, body = excluded.body",
            (registry, key, int(due_ms), json.dumps(item, sort_keys=True)))

    def due_pending(self, registry: str, now_ms: int, limit: int = 500) -> list[tuple[str, dict]]:
        """(key, item) of the checks due by ``now_ms``, the longest overdue first."""
        rows = self._conn().execute(
            "SELECT item_key, body FROM pending WHERE registry = ? AND due_ms <= ? ORDER BY due_ms LIMIT ?",
            (registry, int(now_ms), limit)).fetchall()
        return [(r["item_key"], json.loads(r["body"])) for r in rows]

    def get_pending(self, registry: str, key: str) -> dict | None:
        row = self._conn().execute("SELECT body FROM pending WHERE registry = ? AND item_key = ?",
                                   (registry, key)).fetchone()
        return json.loads(row["body"]) if row else None

    def clear_pending(self, registry: str, key: str) -> None:
        self._conn().execute("DELETE FROM pending WHERE registry = ? AND item_key = ?", (registry, key))

    # -- leases (the intake) -------------------------------------------------------------------
    def claim(self, name: str, owner: str, until_ms: int, now_ms: int) -> bool:
        cur = self._conn().execute(
            "INSERT INTO leases (name, owner, until_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
            " owner = excluded.owner, until_ms = excluded.until_ms WHERE leases.until_ms <= ? OR leases.owner = excluded.owner",
            (name, owner, int(until_ms), int(now_ms)))
        return cur.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        self._conn().execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
