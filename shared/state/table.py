"""The shared state store on Azure Table Storage (``azure-data-tables``): every instance of a
scaled-out Function App reads and writes the same memory. The key design is in docs/state.md.

One table; the partition key's prefix says what an entity is:

=====================================  ===================================  ==========================
PartitionKey                           RowKey                               holds
=====================================  ===================================  ==========================
``s|<registry>|<model>``               ``<version>|<report_id>``            a report (body + columns)
``e|<source>|<event_type>|<event_id>`` ``<report_id>``                      the event's reports
``i|<report_id>``                      ``r``                                where the report is
``n``                                  ``<report_id>``                      reports not yet notified
``h|<registry>|<model>|<target>``      ``<inverted time>|<random>``         alias/stage holders
``w``                                  ``<registry>``                       reconcile watermark
``p|<registry>``                       ``<item key>``                       a check reconcile comes back to
=====================================  ===================================  ==========================

Key parts are percent-encoded (``/ \\ # ?``, control characters and ``|`` are not allowed in or
are reserved for keys). A report body is gzip-compressed JSON in up to 15 binary properties of
60 000 bytes (a property holds at most 64 KiB, an entity 1 MiB).

Errors: connection failures, timeouts, 408, 429 and 5xx raise :class:`StateStoreUnavailable`
(transient: the check is retried, nothing is decided); 401/403 raise :class:`ConfigurationError`
naming the role to grant.
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import EdmType, EntityProperty, TableClient, TableErrorCode, UpdateMode

from shared import settings
from shared.errors import ConfigurationError, StateStoreUnavailable
from shared.evidence.registry import display_uri

STATE = settings.STATE_CONNECTION
CHUNK = 60_000
MAX_CHUNKS = 15
WATERMARK_ATTEMPTS = 20
PASSING = "(verdict eq 'pass' or verdict eq 'warn')"
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
# Bounded retries inside the SDK (azure-core RetryPolicy): a store outage answers the delivery
# 503 within seconds instead of holding it for the SDK's default ten retries.
CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.4, "retry_backoff_max": 2,
                                  "connection_timeout": 5, "read_timeout": 10}

T = TypeVar("T")


def key(*parts: str | None) -> str:
    """One key from its parts, each percent-encoded so none contains ``/ \\ # ?``, a control
    character or the ``|`` separator."""
    return "|".join(quote(p or "", safe="") for p in parts)


def _prefix_range(prefix: str) -> tuple[str, str]:
    """Keys starting with ``prefix`` (which ends with ``|``) are >= lo and < hi."""
    return prefix, prefix[:-1] + "}"  # '}' follows '|'


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _reason(exc: Exception) -> str:
    """What went wrong, without the exception's text (it can carry the endpoint's query string)."""
    if isinstance(exc, HttpResponseError) and exc.status_code:
        code = getattr(exc, "error_code", None)
        return f"HTTP {exc.status_code}{f' {code}' if code else ''}"
    return "timed out" if "timeout" in type(exc).__name__.lower() else f"connection failed ({type(exc).__name__})"


def _retry_after(exc: HttpResponseError) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _table_missing(exc: ResourceNotFoundError) -> ConfigurationError:
    return ConfigurationError(f"the state table does not exist: provision it (infra/ creates it) or fix"
                              f" EVIDENCE_GATE_STATE_TABLE ({exc.error_code})")


@contextmanager
def _calls() -> Iterator[None]:
    """Map the SDK's errors to the taxonomy (shared/errors.py). A missing entity is the caller's
    answer to handle; a missing table is never read as "no history"."""
    try:
        yield
    except ResourceNotFoundError as exc:
        if exc.error_code == TableErrorCode.TABLE_NOT_FOUND:
            raise _table_missing(exc) from None
        raise
    except ClientAuthenticationError as exc:
        raise ConfigurationError(
            f"the state store refused Evidence Gate's identity ({_reason(exc)}): grant the app's identity"
            " 'Storage Table Data Contributor' on the state table, or fix the EVIDENCE_GATE_STATE setting") from None
    except (ResourceExistsError, ResourceModifiedError):
        raise  # answers the callers below act on
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise ConfigurationError(
                f"the state store answered {_reason(exc)}: grant the app's identity 'Storage Table Data Contributor'"
                " on the state table") from None
        if exc.status_code in TRANSIENT_STATUS or exc.status_code is None:
            raise StateStoreUnavailable(_reason(exc), status=exc.status_code, retry_after=_retry_after(exc)) from None
        raise
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StateStoreUnavailable(_reason(exc)) from None


def _encode_body(report: dict) -> dict[str, Any]:
    data = gzip.compress(json.dumps(report, sort_keys=True).encode(), mtime=0)
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"report {report['report_id']} is {len(data)} bytes compressed, more than the state store's"
                         f" {CHUNK * MAX_CHUNKS} bytes per report")
    return {"body_chunks": len(chunks), **{f"body{i}": chunk for i, chunk in enumerate(chunks)}}


def _decode_body(entity: dict) -> dict:
    data = b"".join(bytes(entity[f"body{i}"]) for i in range(int(entity["body_chunks"])))
    return json.loads(gzip.decompress(data))


def _int(value: Any) -> int:
    return int(value.value if isinstance(value, EntityProperty) else value)


class TableStateStore:
    """:class:`shared.state.StateStore` on one Azure Table (``table``: a TableClient, built by
    :meth:`from_settings` or by a test/bench with its own transport or per-call policies)."""

    def __init__(self, table: TableClient, *, create: bool = True):
        """``create``: create the table when missing (a connection string: Azurite, development)."""
        self.table = table
        if create:
            with _calls():
                try:
                    table.create_table()
                except ResourceExistsError:
                    pass

    @classmethod
    def from_settings(cls, **client_options: Any) -> TableStateStore:
        """The table of the ``EVIDENCE_GATE_STATE`` connection (connection string, or service URI
        with the identity :func:`shared.azure_credential.credential` picks)."""
        name = settings.get("EVIDENCE_GATE_STATE_TABLE")
        options = {**CLIENT_OPTIONS, **client_options}
        connection = settings.get(STATE)
        if connection:
            try:
                table = TableClient.from_connection_string(connection, name, **options)
            except ValueError:
                raise ConfigurationError(f"{STATE} is not a valid storage connection string") from None
            return cls(table)
        uri = settings.get(f"{STATE}__tableServiceUri")
        if not uri or not uri.startswith("https://"):
            raise ConfigurationError(f"{STATE}__tableServiceUri must be https://<account>.table.core.windows.net")
        from shared.azure_credential import credential

        # In Azure the table is provisioned by infra/ and the identity's role is scoped to it.
        return cls(TableClient(uri, name, credential=credential(settings.get(f"{STATE}__clientId")), **options),
                   create=False)

    # -- helpers -------------------------------------------------------------------------------
    def _query(self, query_filter: str, parameters: dict[str, Any], *, select: list[str] | None = None,
               first: bool = False) -> list[dict]:
        with _calls():
            pages = self.table.query_entities(query_filter, parameters=parameters, select=select,
                                              results_per_page=1 if first else None)
            out = []
            for entity in pages:
                out.append(entity)
                if first:
                    break
            return out

    def _get(self, pk: str, rk: str, select: list[str] | None = None) -> dict | None:
        with _calls():
            try:
                return self.table.get_entity(pk, rk, select=select)
            except ResourceNotFoundError as exc:
                if exc.error_code == TableErrorCode.TABLE_NOT_FOUND:
                    raise
                return None

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with _calls():
            return fn(*args, **kwargs)

    def _version_filter(self, registry: str, model: str, version: str, extra: str) -> tuple[str, dict]:
        lo, hi = _prefix_range(key(version) + "|")
        return (f"PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and {extra}",
                {"pk": key("s", display_uri(registry), model), "lo": lo, "hi": hi})

    # -- reports -------------------------------------------------------------------------------
    def save(self, report: dict) -> bool:
        """The report entity is created first (it is the de-duplication: one per report id), then
        its indexes; a duplicate re-writes the indexes from the stored entity, so a save
        interrupted between the two is completed by the redelivery."""
        s, t = report["subject"], report["trigger"]
        pk = key("s", display_uri(s["registry"]), s.get("model"))
        rk = key(s.get("version"), report["report_id"])
        entity = {
            "PartitionKey": pk, "RowKey": rk, "report_id": report["report_id"], "registry": display_uri(s["registry"]),
            "model": s.get("model"), "version": s.get("version"), "run_id": s.get("run_id"), "alias": s.get("alias"),
            "stage": s.get("stage"), "check_kind": report.get("check", ""), "verdict": report["verdict"],
            "source": t["source"], "event_type": t.get("event_type"), "event_id": t.get("event_id"),
            "policy_digest": report["policy"]["digest"], "generated_at": report["generated_at"],
            "stored_at": _now(), "notified": False, **_encode_body(report),
        }
        entity = {k: v for k, v in entity.items() if v is not None}
        created = True
        with _calls():
            try:
                self.table.create_entity(entity)
            except ResourceExistsError:
                created = False
        if not created:
            stored = self._get(pk, rk, select=["stored_at", "notified"])
            if stored is None:  # deleted meanwhile: nothing to index
                return False
            entity["stored_at"], entity["notified"] = stored["stored_at"], stored["notified"]
        self._index(report, entity)
        return created

    def _index(self, report: dict, entity: dict) -> None:
        pointer = {"subject_pk": entity["PartitionKey"], "subject_rk": entity["RowKey"], "stored_at": entity["stored_at"]}
        t = report["trigger"]
        if t.get("event_id"):
            self._call(self.table.upsert_entity, {"PartitionKey": key("e", t["source"], t.get("event_type"), t["event_id"]),
                                                  "RowKey": key(report["report_id"]), **pointer}, mode=UpdateMode.REPLACE)
        self._call(self.table.upsert_entity, {"PartitionKey": key("i", report["report_id"]), "RowKey": "r", **pointer},
                   mode=UpdateMode.REPLACE)
        if report["verdict"] != "pass" and not entity["notified"]:
            self._call(self.table.upsert_entity, {"PartitionKey": "n", "RowKey": key(report["report_id"]), **pointer},
                       mode=UpdateMode.REPLACE)

    def _body(self, pointer: dict) -> dict | None:
        entity = self._get(pointer["subject_pk"], pointer["subject_rk"])
        return _decode_body(entity) if entity is not None else None

    def get(self, report_id: str) -> dict | None:
        pointer = self._get(key("i", report_id), "r")
        return self._body(pointer) if pointer is not None else None

    def query(self, *, model: str | None = None, version: str | None = None, verdict: str | None = None,
              since: datetime | None = None, limit: int = 1000) -> list[dict]:
        """A scan of the report partitions with the filters applied by the service, sorted here
        (Table Storage has no ORDER BY): meant for `evidence-gate reports`, not for checks."""
        clauses, params = ["PartitionKey ge 's|' and PartitionKey lt 's}'"], {}
        for column, value in (("model", model), ("version", version), ("verdict", verdict)):
            if value is not None:
                clauses.append(f"{column} eq @{column}")
                params[column] = value
        if since is not None:
            clauses.append("stored_at ge @since")
            params["since"] = since.astimezone(UTC).isoformat(timespec="microseconds")
        rows = self._query(" and ".join(clauses), params)
        rows.sort(key=lambda e: e["stored_at"], reverse=True)
        return [_decode_body(e) for e in rows[:limit]]

    def reports_for_event(self, source: str, event_type: str, event_id: str) -> list[dict]:
        pointers = self._query("PartitionKey eq @pk", {"pk": key("e", source, event_type, event_id)})
        pointers.sort(key=lambda e: e["stored_at"])
        return [body for body in map(self._body, pointers) if body is not None]

    def count(self) -> int:
        return len(self._query("PartitionKey ge 's|' and PartitionKey lt 's}'", {}, select=["RowKey"]))

    def has_report(self, registry: str, model: str, version: str, policy_digest: str, check: str) -> bool:
        query, params = self._version_filter(registry, model, version, "policy_digest eq @digest and check_kind eq @check")
        return bool(self._query(query, {**params, "digest": policy_digest, "check": check}, select=["RowKey"], first=True))

    # -- notification state --------------------------------------------------------------------
    def unnotified(self, limit: int = 50) -> list[dict]:
        pointers = self._query("PartitionKey eq 'n'", {})
        pointers.sort(key=lambda e: e["stored_at"])
        out = []
        for pointer in pointers:
            body = self._body(pointer)
            if body is not None:
                out.append(body)
                if len(out) == limit:
                    break
        return out

    def mark_notified(self, report_id: str) -> None:
        pointer = self._get("n", key(report_id))
        if pointer is None:
            return
        with _calls():
            try:
                self.table.update_entity({"PartitionKey": pointer["subject_pk"], "RowKey": pointer["subject_rk"],
                                          "notified": True}, mode=UpdateMode.MERGE)
            except ResourceNotFoundError as exc:
                if exc.error_code == TableErrorCode.TABLE_NOT_FOUND:
                    raise
            self.table.delete_entity("n", key(report_id))  # no error when already deleted

    # -- history -------------------------------------------------------------------------------
    def has_passing_registration(self, registry: str, model: str, version: str) -> bool:
        query, params = self._version_filter(registry, model, version, f"check_kind eq 'registration' and {PASSING}")
        return bool(self._query(query, params, select=["RowKey"], first=True))

    def has_passing_report(self, registry: str, model: str, version: str) -> bool:
        query, params = self._version_filter(
            registry, model, version, f"(check_kind eq 'registration' or check_kind eq 'promotion') and {PASSING}")
        return bool(self._query(query, params, select=["RowKey"], first=True))

    def passed_versions(self, registry: str, model: str) -> list[str]:
        rows = self._query(f"PartitionKey eq @pk and check_kind eq 'registration' and {PASSING}",
                           {"pk": key("s", display_uri(registry), model)}, select=["version"])
        return sorted({r["version"] for r in rows if r.get("version") is not None})

    def _holders_pk(self, registry: str, model: str, target: str) -> str:
        return key("h", display_uri(registry), model, target)

    def record_holders(self, registry: str, model: str, holders: dict[str, str]) -> None:
        """Appends a holder when it differs from the latest one recorded (row keys sort newest first)."""
        for target, version in holders.items():
            pk = self._holders_pk(registry, model, target)
            last = self._query("PartitionKey eq @pk", {"pk": pk}, select=["version"], first=True)
            if last and last[0]["version"] == version:
                continue
            inverted = 10**19 - time.time_ns()
            self._call(self.table.create_entity, {"PartitionKey": pk, "RowKey": f"{inverted:020d}|{secrets.token_hex(4)}",
                                                  "version": version, "observed_at": _now()})

    def previous_holder(self, registry: str, model: str, target: str, exclude_version: str) -> str | None:
        rows = self._query("PartitionKey eq @pk and version ne @v",
                           {"pk": self._holders_pk(registry, model, target), "v": exclude_version},
                           select=["version"], first=True)
        return rows[0]["version"] if rows else None

    # -- reconcile -----------------------------------------------------------------------------
    def watermark(self, registry: str) -> int | None:
        entity = self._get("w", key(display_uri(registry)), select=["value"])
        return _int(entity["value"]) if entity is not None else None

    def set_watermark(self, registry: str, value: int) -> None:
        """Compare-and-set on the entity's ETag: a concurrent sweep's newer value is re-read and
        kept; an older one never replaces it."""
        rk = key(display_uri(registry))
        new = {"PartitionKey": "w", "RowKey": rk, "value": EntityProperty(int(value), EdmType.INT64)}
        for _ in range(WATERMARK_ATTEMPTS):
            current = self._get("w", rk)
            with _calls():
                try:
                    if current is None:
                        self.table.create_entity(new)
                    elif _int(current["value"]) >= value:
                        return
                    else:
                        self.table.update_entity(new, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                                 match_condition=MatchConditions.IfNotModified)
                    return
                except (ResourceExistsError, ResourceModifiedError):
                    continue  # another sweep wrote first: read again
        raise StateStoreUnavailable(f"watermark of {display_uri(registry)} kept changing ({WATERMARK_ATTEMPTS} conflicts)")

    # -- checks reconcile comes back to --------------------------------------------------------
    def set_pending(self, registry: str, key_: str, item: dict, due_ms: int) -> None:
        self._call(self.table.upsert_entity, {
            "PartitionKey": key("p", display_uri(registry)), "RowKey": key(key_),
            "due_ms": EntityProperty(int(due_ms), EdmType.INT64), "body": json.dumps(item, sort_keys=True)},
            mode=UpdateMode.REPLACE)

    def due_pending(self, registry: str, now_ms: int, limit: int = 500) -> list[tuple[str, dict]]:
        rows = self._query("PartitionKey eq @pk and due_ms le @now",
                           {"pk": key("p", display_uri(registry)), "now": int(now_ms)})
        rows.sort(key=lambda e: _int(e["due_ms"]))
        return [(_unkey(e["RowKey"]), json.loads(e["body"])) for e in rows[:limit]]

    def get_pending(self, registry: str, key_: str) -> dict | None:
        entity = self._get(key("p", display_uri(registry)), key(key_))
        return json.loads(entity["body"]) if entity is not None else None

    def clear_pending(self, registry: str, key_: str) -> None:
        with _calls():
            try:
                self.table.delete_entity(key("p", display_uri(registry)), key(key_))
            except ResourceNotFoundError as exc:
                if exc.error_code == TableErrorCode.TABLE_NOT_FOUND:
                    raise

    # -- leases (the intake): one entity per lease, taken over with its ETag ------------------------
    def claim(self, name: str, owner: str, until_ms: int, now_ms: int) -> bool:
        pk, rk = key("l", name), "lease"
        entity = {"PartitionKey": pk, "RowKey": rk, "owner": owner, "until_ms": EntityProperty(int(until_ms), EdmType.INT64)}
        with _calls():
            try:
                self.table.create_entity(entity)
                return True
            except ResourceExistsError:
                pass
        held = self._get(pk, rk)
        if held is None:  # released meanwhile: the next attempt takes it
            return False
        if held["owner"] != owner and _int(held["until_ms"]) > now_ms:
            return False
        with _calls():
            try:
                self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=held.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)
                return True
            except (ResourceModifiedError, ResourceNotFoundError):
                return False  # another instance took it (or released it) first

    def release(self, name: str, owner: str) -> None:
        pk, rk = key("l", name), "lease"
        held = self._get(pk, rk)
        if held is None or held["owner"] != owner:
            return
        with _calls():
            try:
                self.table.delete_entity(pk, rk, etag=held.metadata["etag"], match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                pass  # taken over or gone: not ours to delete


def _unkey(text: str) -> str:
    return unquote(text)
