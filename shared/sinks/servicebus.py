"""Publish reports to the Service Bus topic: the durable record of every check.

The message contract (documented in ``docs/contracts.md``, section "Service Bus message"):

- body: the report as compact UTF-8 JSON (:func:`report_json`), ``content_type`` ``application/json``;
- ``message_id`` = ``report_id``: the topic's duplicate detection drops redelivered events;
- ``correlation_id`` = the id of the triggering event; ``subject`` = the verdict;
- ``application_properties``: flat strings and ints that subscriptions filter on
  (:data:`PROPERTY_NAMES`). Every property is always present: a missing string is ``""``.

A report over the Standard tier's 256 KiB limit is trimmed (:func:`fit_report`), never dropped.
azure-servicebus and azure-identity are imported lazily so importing this module stays cheap.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from shared import settings
from shared.errors import PublishError
from shared.telemetry import safe_registry

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

CONTENT_TYPE = "application/json"
MAX_MESSAGE_BYTES = 256 * 1024
"""Standard tier maximum message size: body, system properties and application properties together."""
SAFETY_MARGIN_BYTES = 8 * 1024
"""Head room for AMQP framing and the annotations the broker adds."""
_LIMIT = "the Service Bus message size limit"
TRIM_NOTE = f"evidence trimmed to fit {_LIMIT}"
RETRY_TOTAL = 3
"""Bounded SDK retries per send; after that the event itself is retried (PublishError)."""

PROPERTY_NAMES: tuple[str, ...] = (
    "schema", "verdict", "model", "version", "alias", "stage", "source", "event_type",
    "registry", "check", "error_count", "warning_count",
)
_PROPERTY_MAX_CHARS = 256

# Top-level report keys never dropped by trimming; any other section over this size may be.
_CORE_KEYS = frozenset({
    "schema", "report_id", "verdict", "check", "trigger", "subject", "policy", "findings", "counts",
    "links", "evidence_digest", "registry_requests", "notes", "generated_at",
})
_BULKY_SECTION_BYTES = 2048
# Trim levels, gentlest first: (evidence string chars, evidence keys kept, finding text chars).
_LEVELS: tuple[tuple[int, int | None, int | None], ...] = (
    (512, None, None),
    (128, 200, 2000),
    (32, 50, 500),
    (0, 20, 120),
    (0, 0, 0),
)
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


class Sender(Protocol):
    def send_messages(self, message: ServiceBusMessage) -> None: ...


SenderFactory = Callable[[], AbstractContextManager[Sender]]


def report_json(report: dict[str, Any]) -> bytes:
    """The message body: compact UTF-8 JSON of the report."""
    return json.dumps(report, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def application_properties(report: dict[str, Any]) -> dict[str, str | int]:
    """The flat properties subscriptions filter on (strings; counts are ints; missing strings are "")."""
    trigger = report.get("trigger") or {}
    subject = report.get("subject") or {}
    unwaived = Counter(f.get("severity") for f in report.get("findings") or [] if not f.get("waived"))
    text = {
        "schema": report.get("schema"),
        "verdict": report.get("verdict"),
        "model": subject.get("model"),
        "version": subject.get("version"),
        "alias": subject.get("alias"),
        "stage": subject.get("stage"),
        "source": trigger.get("source"),
        "event_type": trigger.get("event_type"),
        "registry": safe_registry(subject.get("registry")),
        "check": report.get("check"),
    }
    props: dict[str, str | int] = {
        k: ("" if v is None else str(v))[:_PROPERTY_MAX_CHARS] for k, v in text.items()
    }
    props["error_count"] = unwaived["error"]
    props["warning_count"] = unwaived["warning"]
    return {name: props[name] for name in PROPERTY_NAMES}


def to_message(
    report: dict[str, Any], *, event_id: str | None, max_bytes: int = MAX_MESSAGE_BYTES
) -> ServiceBusMessage:
    """The exact message published for ``report`` (trimmed to fit ``max_bytes`` when needed)."""
    from azure.servicebus import ServiceBusMessage

    report_id = report.get("report_id")
    if not report_id:
        raise ValueError("a report without report_id cannot be published (message_id is the report_id)")
    if event_id is None:
        event_id = (report.get("trigger") or {}).get("event_id")
    props = application_properties(report)
    verdict = str(report.get("verdict") or "")
    overhead = _header_bytes(props, str(report_id), event_id, verdict)
    body = fit_report(report, max_body_bytes=max_bytes - SAFETY_MARGIN_BYTES - overhead)
    return ServiceBusMessage(
        body,
        message_id=str(report_id),
        correlation_id=event_id,
        subject=verdict,
        content_type=CONTENT_TYPE,
        application_properties=dict(props),
    )


def _header_bytes(props: dict[str, str | int], *system: str | None) -> int:
    """A generous estimate of the AMQP size of properties and system properties."""
    size = 256 + sum(len(v.encode()) + 8 for v in system if v)
    for key, value in props.items():
        size += len(key.encode()) + len(str(value).encode()) + 16
    return size


def fit_report(report: dict[str, Any], *, max_body_bytes: int) -> bytes:
    """The report body, trimmed level by level until it fits ``max_body_bytes``. Never fails.

    1. each finding's ``evidence`` is summarised (keys kept, long values cut, nested values described),
       report sections outside the contract that are bulky are dropped; the note :data:`TRIM_NOTE` is added;
    2. further levels cut evidence values shorter, keep fewer evidence keys and cut finding
       ``message`` / ``remediation`` / ``title``; every finding is kept;
    3. only a report whose findings cannot fit even with empty texts (thousands of findings) keeps the
       most severe findings that fit and summarises the rest in ``findings_omitted`` (count by rule).
    """
    body = report_json(report)
    if len(body) <= max_body_bytes:
        return body
    for level in _LEVELS:
        trimmed = _trim(report, *level)
        body = report_json(trimmed)
        if len(body) <= max_body_bytes:
            return body
    return _omit_findings(trimmed, max_body_bytes)


def _trim(report: dict[str, Any], value_chars: int, max_keys: int | None, text_chars: int | None) -> dict:
    out = {k: v for k, v in report.items() if k != "findings"}
    dropped = []
    for key in list(out):
        if key not in _CORE_KEYS and len(report_json({key: out[key]})) > _BULKY_SECTION_BYTES:
            dropped.append(key)
            del out[key]
    findings = []
    for finding in report.get("findings") or []:
        f = copy.copy(finding)
        f["evidence"] = _summarise(finding.get("evidence"), value_chars, max_keys)
        if text_chars is not None:
            for key in ("message", "remediation"):
                f[key] = _cut(str(f.get(key) or ""), text_chars) if text_chars else ""
            f["title"] = _cut(str(f.get("title") or ""), max(text_chars, 80))
        if f.get("waiver") and len(report_json(f["waiver"])) > 512:
            f["waiver"] = _summarise(f["waiver"], value_chars, max_keys)
        findings.append(f)
    out["findings"] = findings
    notes = [n for n in (report.get("notes") or []) if isinstance(n, str)]
    notes.append(TRIM_NOTE)
    if dropped:
        notes.append(f"report sections dropped to fit {_LIMIT}: " + ", ".join(dropped))
    if text_chars == 0:
        notes.append(f"finding messages, remediations and evidence removed to fit {_LIMIT}")
    elif text_chars is not None:
        notes.append(f"finding texts cut to {text_chars} characters to fit {_LIMIT}")
    out["notes"] = notes
    return out


def _summarise(evidence: Any, value_chars: int, max_keys: int | None) -> dict[str, Any]:
    if max_keys == 0 or evidence in (None, {}):
        return {}
    if not isinstance(evidence, dict):
        return {"summary": _describe(evidence, value_chars)}
    keys = list(evidence)
    kept = keys if max_keys is None else keys[:max_keys]
    out = {str(k): _describe(evidence[k], value_chars) for k in kept}
    if len(kept) < len(keys):
        out["…"] = f"[{len(keys) - len(kept)} more keys trimmed]"
    return out


def _describe(value: Any, chars: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _cut(value, chars)
    size = len(report_json(value))
    if size <= chars:
        return value
    if isinstance(value, dict):
        return f"[object with {len(value)} keys, {size} bytes, trimmed]"
    if isinstance(value, list | tuple):
        return f"[list of {len(value)} items, {size} bytes, trimmed]"
    return _cut(str(value), chars)


def _cut(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    if chars <= 0:
        return f"[{len(text)} chars trimmed]" if text else ""
    return f"{text[:chars]}…[{len(text) - chars} more chars]"


def _omit_findings(report: dict[str, Any], max_body_bytes: int) -> bytes:
    findings = report["findings"]
    def priority(i: int) -> tuple[bool, int, int]:  # unwaived errors first, then warnings, infos
        return bool(findings[i].get("waived")), _SEVERITY_RANK.get(findings[i].get("severity"), 3), i

    order = sorted(range(len(findings)), key=priority)

    def build(keep: int) -> bytes:
        kept = sorted(order[:keep])
        omitted = Counter(str(findings[i].get("rule_id")) for i in order[keep:])
        out = dict(report, findings=[findings[i] for i in kept])
        out["findings_omitted"] = {"count": len(findings) - keep, "by_rule": dict(sorted(omitted.items()))}
        out["notes"] = [*report["notes"], f"{len(findings) - keep} findings omitted to fit {_LIMIT}"
                        " (see findings_omitted)"]
        return report_json(out)

    lo, hi = 0, len(findings)  # the largest `keep` that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(build(mid)) <= max_body_bytes:
            lo = mid
        else:
            hi = mid - 1
    return build(lo)


def _transient_errors() -> tuple[type[BaseException], ...]:
    from azure.core.exceptions import AzureError  # ServiceBusError and credential errors derive from it

    return (AzureError, OSError, TimeoutError)


class ServiceBusPublisher:
    """Sends each report to the topic through a sender seam (see :func:`default_sender_factory`)."""

    def __init__(self, sender_factory: SenderFactory, *, topic: str | None = None,
                 namespace: str | None = None) -> None:
        self._sender_factory = sender_factory
        self.topic = topic
        self.namespace = namespace

    def publish(self, report: dict[str, Any], event_id: str | None = None) -> ServiceBusMessage:
        """Send ``report``; returns the message sent. Raises :class:`PublishError` when the send failed:
        the caller must then not acknowledge the event (raise / answer 503) so it is redelivered."""
        message = to_message(report, event_id=event_id)
        try:
            from azure.servicebus.exceptions import MessageSizeExceededError

            with self._sender_factory() as sender:
                try:
                    sender.send_messages(message)
                except MessageSizeExceededError:
                    # The broker counted more than our estimate: send a harder-trimmed copy.
                    message = to_message(report, event_id=event_id, max_bytes=MAX_MESSAGE_BYTES // 2)
                    sender.send_messages(message)
        except _transient_errors() as exc:
            raise PublishError(
                f"publishing report {report.get('report_id')} to Service Bus topic {self.topic or '?'}"
                f" failed ({type(exc).__name__}: {str(exc)[:200]}); the event will be retried"
            ) from exc
        return message

    @classmethod
    def from_settings(cls) -> ServiceBusPublisher | None:
        return from_settings()


def default_sender_factory(namespace: str, topic: str, client_id: str | None = None) -> SenderFactory:
    """A factory opening ``ServiceBusClient`` (identity-based, DefaultAzureCredential) → topic sender."""
    credential: Any = None

    @contextmanager
    def open_sender() -> Iterator[Sender]:
        nonlocal credential
        from azure.identity import DefaultAzureCredential
        from azure.servicebus import ServiceBusClient

        if credential is None:  # one credential per publisher: its token cache is reused
            credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        client = ServiceBusClient(
            fully_qualified_namespace=namespace, credential=credential,
            retry_total=RETRY_TOTAL, retry_backoff_max=10,
        )
        with client, client.get_topic_sender(topic_name=topic) as sender:
            yield sender

    return open_sender


def _host(namespace: str) -> str:
    for prefix in ("sb://", "amqps://", "https://"):
        if namespace.lower().startswith(prefix):
            namespace = namespace[len(prefix):]
    return namespace.strip("/")


def from_settings() -> ServiceBusPublisher | None:
    """A publisher when ``EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace`` is set, else ``None``
    (then reports go to the local store)."""
    namespace = settings.get(f"{settings.SERVICEBUS_CONNECTION}__fullyQualifiedNamespace")
    if not namespace:
        return None
    topic = settings.get("EVIDENCE_GATE_TOPIC") or "evidence-gate-findings"
    client_id = settings.get(f"{settings.SERVICEBUS_CONNECTION}__clientId") or settings.get("AZURE_CLIENT_ID")
    host = _host(namespace)
    return ServiceBusPublisher(default_sender_factory(host, topic, client_id), topic=topic, namespace=host)
