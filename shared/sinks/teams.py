"""Teams sink: an Adaptive Card per non-pass report, posted to a Teams Workflows webhook.

The card goes to a Workflows flow ("When a Teams webhook request is received"), in the envelope
that trigger expects::

    {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                          "contentUrl": null, "content": <AdaptiveCard 1.4>}]}

Limits this module works within:

* card version 1.4 (the highest the Flow bot renders);
* the whole serialised body stays under :data:`MAX_BODY_BYTES` (about 24 KB; the hard limit is
  28 KB and a too-large card fails silently, visible only in the flow's run history). Findings
  beyond :data:`MAX_FINDINGS` are summarised, long texts are shortened, and if the body still
  does not fit, detail is dropped step by step; the verdict header is never dropped;
* every text that comes from the report (model names, versions, finding titles and messages,
  remediations, waiver reasons, event types, ...) goes through :func:`_md`, which escapes the
  Markdown that TextBlock and Fact texts are rendered with; only the card's own words are written
  as they are (see :func:`_md` for what is escaped and why);
* the trigger answers 202 (queued). 429 and 5xx are transient: :class:`TeamsUnavailable`
  is raised so Service Bus redelivers (and dead-letters after its max delivery count); any
  other 4xx is logged and the message completed, so a bad card never loops.

The webhook URL carries its own signature (``sig=...``): it is a secret. It is never logged,
never put in an exception and never shown in a repr.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.errors import TeamsUnavailable

logger = logging.getLogger("evidence_gate.teams")

CARD_VERSION = "1.4"
CARD_SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

MAX_BODY_BYTES = 24_000
"""Budget for the serialised UTF-8 request body (Teams: keep under about 24 KB, hard limit 28 KB)."""

MAX_FINDINGS = 10
"""Findings shown one by one; the rest are summarised in one line."""

SEVERITY_ORDER = ("error", "warning", "info")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}
_SEVERITY_LABEL = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}
_SEVERITY_COLOR = {"error": "Attention", "warning": "Warning", "info": "Accent"}

_VERDICT = {
    # verdict: (label, TextBlock colour, Container style, what it means for a release manager)
    "fail": ("FAIL", "Attention", "attention", "Blocked: fix the errors below before release."),
    "warn": (
        "WARN",
        "Warning",
        "warning",
        "Not blocked, but evidence is missing: review the warnings below.",
    ),
    "pass": ("PASS", "Good", "good", "All checks passed."),
}

_TRIGGER_SOURCE = {
    "azureml": "Azure ML event",
    "databricks-registry": "Databricks Model Registry webhook",
    "databricks-jobs": "Databricks job notification",
    "mlflow": "MLflow webhook",
    "reconcile": "Reconcile sweep",
    "cli": "evidence-gate check (CLI)",
}

_CHECK = {
    "registration": "Registration check",
    "promotion": "Promotion check",
    "run": "Run check",
    "job_failure": "Training job failure",
    "unverifiable": "Could not be checked",
    "deployment": "Deployment check",
}

# Detail levels tried in order until the body fits the budget:
# (findings shown at most, max chars of a title, of a message, of a remediation).
_LEVELS: tuple[tuple[int, int, int, int], ...] = (
    (MAX_FINDINGS, 200, 700, 500),
    (MAX_FINDINGS, 160, 300, 240),
    (MAX_FINDINGS, 120, 160, 120),
    (5, 120, 160, 120),
    (3, 100, 120, 100),
    (1, 80, 100, 80),
    (0, 0, 0, 0),
)


# --------------------------------------------------------------------------------------------
# The card
# --------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split()) if not isinstance(value, str) else value.strip()


def _clip(value: Any, limit: int) -> str:
    text = _text(value)
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "\u2026"


# Markdown: TextBlock texts, Fact titles and values (and fallbackText) are rendered as Markdown
# by Teams and by the adaptivecards JS renderer. Escaped with a backslash, everywhere in a text:
#   \ before ASCII punctuation (so a backslash in the text stays a backslash),
#   * _ (emphasis), [ ] (links, images), ` (code spans), ~~ (strikethrough, fences),
#   < opening an autolink (<https://...>, <a@b.c>), & opening an entity (&amp;),
#   { of the host's {{DATE(...)}} / {{TIME(...)}} functions (applied before Markdown).
_MD_INLINE = re.compile(
    r"\\(?=[!-/:-@\[-`{-~])"
    r"|[*_\[\]`]"
    r"|~(?=~)|(?<=~)~"
    r"|<(?=[^\s<>]*[:@][^\s<>]*>)"
    r"|&(?=#?\w+;)"
    r"|\{(?=\{(?:DATE|TIME)\()"
)
# ... and at the start of a text, the block markers: heading, block quote, bullet list item or
# thematic break (- or +), ordered list item (1. or 1)).
_MD_BLOCK_START = re.compile(r"#{1,6}(?=\s|$)|>|[-+](?=\s|$)|-(?=[\s-]*$)")
_MD_ORDERED_START = re.compile(r"(\d{1,9})([.)])(?=\s|$)")


def _md(value: Any, limit: int | None = None) -> str:
    """Report text as a Markdown-safe card text: the one way the report's texts enter the card.

    Whitespace (newlines included) is collapsed to single spaces, so no block can start inside
    the text; the text is shortened to ``limit`` characters (before escaping, so an escape is
    never cut in half); then every character that Markdown would read as formatting is escaped
    with a backslash (:data:`_MD_INLINE`, :data:`_MD_BLOCK_START`). CommonMark renderers
    (markdown-it in the adaptivecards JS renderer; Teams on desktop and the web) show the text
    literally. Teams' mobile renderer honours the escapes of ``* _ [ ]`` (the formatting Teams
    supports: emphasis, links) but shows the backslash of the rarer others.
    """
    text = " ".join(_text(value).split())
    if limit is not None:
        text = _clip(text, limit)
    if not text:
        return ""
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(0), text)
    ordered = _MD_ORDERED_START.match(text)
    if ordered:
        return ordered.group(1) + "\\" + text[ordered.end(1) :]
    if _MD_BLOCK_START.match(text):
        return "\\" + text
    return text


def _tb(text: str, **props: Any) -> dict:
    block = {"type": "TextBlock", "text": text, "wrap": True}
    block.update(props)
    return block


def _plural(n: int, word: str) -> str:
    if word == "info":
        return f"{n} info"
    return f"{n} {word}" + ("" if n == 1 else "s")


def _sorted_findings(findings: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Unwaived before waived, then error, warning, info; stable within a severity."""
    indexed = [(i, f) for i, f in enumerate(findings) if isinstance(f, Mapping)]
    indexed.sort(key=lambda p: (bool(p[1].get("waived")), _SEVERITY_RANK.get(str(p[1].get("severity")), 9), p[0]))
    return [f for _, f in indexed]


def _counts(findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0, "waived": 0}
    for f in findings:
        if f.get("waived"):
            counts["waived"] += 1
        elif f.get("severity") in counts:
            counts[str(f["severity"])] += 1
    return counts


def _counts_line(counts: Mapping[str, int]) -> str:
    parts = [
        _plural(counts.get("error", 0), "error"),
        _plural(counts.get("warning", 0), "warning"),
        _plural(counts.get("info", 0), "info"),
    ]
    if counts.get("waived"):
        parts.append(f"{counts['waived']} waived")
    return " \u00b7 ".join(parts)


def _subject_title(subject: Mapping[str, Any]) -> str:
    model = _md(subject.get("model"), 120)
    version = _md(subject.get("version"), 40)
    if model and version:
        return f"{model} version {version}"
    if model:
        return model
    run_id = _md(subject.get("run_id"), 64)
    return f"run {run_id}" if run_id else "unknown subject"


def _registry_ui(subject: Mapping[str, Any], links: Mapping[str, Any]) -> str:
    """Name of the registry's own UI, for the link buttons."""
    registry = _text(subject.get("registry")).lower()
    hosts = " ".join(urlsplit(_text(u)).netloc.lower() for u in links.values() if u)
    if registry.startswith("azureml") or "ml.azure.com" in hosts:
        return "Azure ML studio"
    if registry.startswith("databricks") or "databricks" in hosts or "azuredatabricks" in hosts:
        return "Databricks"
    return "MLflow UI"


def _safe_url(value: Any) -> str | None:
    url = _text(value)
    if not url or len(url) > 2000:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def _trigger_line(trigger: Mapping[str, Any], lean: bool = False) -> str:
    source = _text(trigger.get("source"))
    line = _TRIGGER_SOURCE.get(source) or _md(source, 40) or "unknown source"
    event_type = _md(trigger.get("event_type"), 30 if lean else 120)
    if event_type:
        line += f": {event_type}"
    event_time = _md(trigger.get("event_time"), 40)
    if event_time:
        line += f" at {event_time}"
    return line


def _waiver_text(waiver: Any) -> str:
    if not isinstance(waiver, Mapping):
        return ""
    bits = []
    reason = _md(waiver.get("reason"), 160)
    if reason:
        bits.append(reason)
    approver = _md(waiver.get("approver") or waiver.get("approved_by"), 80)
    if approver:
        bits.append(f"approved by {approver}")
    expires = _md(waiver.get("expires") or waiver.get("expiry") or waiver.get("expires_on"), 40)
    if expires:
        bits.append(f"until {expires}")
    return ", ".join(bits)


def _finding_block(f: Mapping[str, Any], title_max: int, message_max: int, remedy_max: int) -> dict:
    severity = _text(f.get("severity")) or "info"
    waived = bool(f.get("waived"))
    rule_id = _md(f.get("rule_id"), 16) or "?"
    label = _SEVERITY_LABEL.get(severity) or _md(severity.upper(), 16)
    head_cols = [
        {
            "type": "Column",
            "width": "auto",
            "items": [
                _tb(
                    label + (" (waived)" if waived else ""),
                    weight="Bolder",
                    color="Good" if waived else _SEVERITY_COLOR.get(severity, "Default"),
                    wrap=False,
                )
            ],
        },
        {
            "type": "Column",
            "width": "auto",
            "items": [_tb(rule_id, weight="Bolder", fontType="Monospace", wrap=False)],
        },
        {
            "type": "Column",
            "width": "stretch",
            "items": [_tb(_md(f.get("title"), title_max), weight="Bolder")],
        },
    ]
    items: list[dict] = [{"type": "ColumnSet", "columns": head_cols}]
    message = _md(f.get("message"), message_max)
    if message:
        items.append(_tb(message, spacing="Small"))
    remedy = _md(f.get("remediation"), remedy_max)
    if remedy:
        items.append(_tb(f"Fix: {remedy}", isSubtle=True, spacing="Small"))
    if waived:
        detail = _waiver_text(f.get("waiver"))
        items.append(_tb("Waived" + (f": {detail}" if detail else ""), color="Good", isSubtle=True, spacing="Small"))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _rest_summary(rest: list[Mapping[str, Any]], shown: int) -> str:
    counts = _counts(rest)
    parts = [_plural(counts[s], s) for s in SEVERITY_ORDER if counts[s]]
    if counts["waived"]:
        parts.append(f"{counts['waived']} waived")
    ids: list[str] = []
    for f in rest:
        rid = _md(f.get("rule_id"), 16)
        if rid and rid not in ids:
            ids.append(rid)
    id_text = ", ".join(ids[:30]) + (", \u2026" if len(ids) > 30 else "")
    lead = f"\u2026 and {len(rest)} more finding{'s' if len(rest) != 1 else ''}"
    if shown == 0:
        lead = f"{len(rest)} finding{'s' if len(rest) != 1 else ''}"
    text = lead + (": " + ", ".join(parts) if parts else "")
    if id_text:
        text += f". Rules: {id_text}"
    return text + "."


def _expired_waivers_text(expired: list[Any], limit: int) -> str:
    items = []
    for w in expired[:limit]:
        if not isinstance(w, Mapping):
            continue
        rule = _md(w.get("rule_id") or w.get("rule"), 16) or "?"
        pattern = _md(w.get("model") or w.get("model_pattern") or w.get("pattern"), 60)
        expires = _md(w.get("expires") or w.get("expiry") or w.get("expires_on"), 40)
        text = rule + (f" for {pattern}" if pattern else "") + (f" (expired {expires})" if expires else "")
        items.append(text)
    more = len(expired) - limit
    if more > 0:
        items.append(f"{more} more")
    return f"Expired waivers ignored ({len(expired)}): " + "; ".join(items) + ". Renew or remove them in the waivers file."


def _card(report: Mapping[str, Any], level: tuple[int, int, int, int], *, lean: bool = False) -> dict:
    max_shown, title_max, message_max, remedy_max = level
    verdict = _text(report.get("verdict")).lower()
    label, color, style, meaning = _VERDICT.get(verdict, (_md(verdict.upper(), 16) or "UNKNOWN", "Default", "emphasis", ""))
    subject = report.get("subject") if isinstance(report.get("subject"), Mapping) else {}
    trigger = report.get("trigger") if isinstance(report.get("trigger"), Mapping) else {}
    policy = report.get("policy") if isinstance(report.get("policy"), Mapping) else {}
    links = report.get("links") if isinstance(report.get("links"), Mapping) else {}
    raw_findings = report.get("findings") if isinstance(report.get("findings"), list) else []
    findings = _sorted_findings(raw_findings)
    counts = _counts(findings)
    check = _text(report.get("check"))
    title = _subject_title(subject)

    header_items = [
        _tb(
            "Evidence Gate \u00b7 " + (_CHECK.get(check) or _md(check.replace("_", " ").capitalize(), 40) or "Check"),
            size="Small",
            isSubtle=True,
            spacing="None",
        ),
        _tb(f"{label}: {title}", size="Large", weight="Bolder", color=color, spacing="Small"),
        _tb(_counts_line(counts), weight="Bolder", spacing="Small"),
    ]
    if meaning:
        header_items.append(_tb(meaning, spacing="Small"))
    body: list[dict] = [{"type": "Container", "style": style, "bleed": True, "items": header_items}]

    facts = []
    short = 60 if lean else 160

    def fact(name: str, text: str) -> None:
        """``text`` is card Markdown: report values in it went through :func:`_md`."""
        if text:
            facts.append({"title": name, "value": text})

    fact("Model", _md(subject.get("model"), short))
    fact("Version", _md(subject.get("version"), short))
    if subject.get("alias"):
        fact("Alias", _md(subject.get("alias"), short))
    if subject.get("stage"):
        fact("Stage", _md(subject.get("stage"), short))
    fact("Trigger", _trigger_line(trigger, lean))
    fact("Run", _md(subject.get("run_id"), short))
    fact("Registry", _md(subject.get("registry"), short))
    policy_name = _md(policy.get("name"), 40 if lean else 120)
    if policy_name:
        digest = _text(policy.get("digest"))
        digest_text = _md(digest[:19]) + "\u2026" if len(digest) > 20 else _md(digest)
        fact("Policy", policy_name + (f" ({digest_text})" if digest_text else ""))
    fact("Report", _md(_text(report.get("report_id"))[:16]))
    fact("Checked", _md(report.get("generated_at"), 40))
    if facts:
        body.append({"type": "FactSet", "facts": facts, "spacing": "Medium"})

    if findings:
        shown = findings[:max_shown]
        rest = findings[max_shown:]
        body.append(
            _tb(
                f"Findings ({len(findings)})",
                size="Medium",
                weight="Bolder",
                separator=True,
                spacing="Large",
            )
        )
        for f in shown:
            body.append(_finding_block(f, title_max, message_max, remedy_max))
        if rest:
            summary = _rest_summary(rest, len(shown))
            model, version = _text(subject.get("model")), _text(subject.get("version"))
            if model and version and not lean:
                summary += f" Full report: evidence-gate reports --model {_md(model, 80)} --version {_md(version, 20)}"
            body.append(_tb(summary, isSubtle=True, separator=True, spacing="Medium"))

    expired = report.get("expired_waivers") if isinstance(report.get("expired_waivers"), list) else []
    if expired:
        body.append(
            _tb(
                _expired_waivers_text(expired, 3 if lean else 10),
                color="Warning",
                separator=True,
                spacing="Medium",
            )
        )

    notes = report.get("notes") if isinstance(report.get("notes"), list) else []
    if notes and not lean:
        for note in notes[:3]:
            body.append(_tb(_md(note, 200), isSubtle=True, size="Small", spacing="Small"))

    ui = _registry_ui(subject, links)
    actions = []
    version_url = _safe_url(links.get("version"))
    if version_url:
        actions.append({"type": "Action.OpenUrl", "title": f"Open version in {ui}", "url": version_url})
    run_url = _safe_url(links.get("run"))
    if run_url:
        actions.append({"type": "Action.OpenUrl", "title": f"Open run in {ui}", "url": run_url})

    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA_URL,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": f"Evidence Gate {label}: {title} ({_counts_line(counts)})",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def envelope(card: Mapping[str, Any]) -> dict:
    """The Workflows webhook envelope around one Adaptive Card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def serialise(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_card(report: Mapping[str, Any], *, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The full Workflows envelope (``{"type": "message", "attachments": [...]}``) for a report.

    Tries the detail levels in :data:`_LEVELS` from the richest down and returns the first whose
    serialised body is under ``max_bytes``; the last resort keeps only the verdict header, the
    facts (shortened), the one-line findings summary and the links.
    """
    for level in _LEVELS:
        body = envelope(_card(report, level))
        if len(serialise(body)) < max_bytes:
            return body
    return envelope(_card(report, _LEVELS[-1], lean=True))


def card_size(report: Mapping[str, Any]) -> int:
    """Bytes of the serialised body :func:`build_card` produces for a report."""
    return len(serialise(build_card(report)))


# --------------------------------------------------------------------------------------------
# Posting
# --------------------------------------------------------------------------------------------

Transport = Callable[[str, bytes, Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]
"""``post(url, body, headers) -> (status, response headers, response body)``.

Raises :class:`OSError` (``urllib.error.URLError`` is one) when the request could not be made."""


@dataclass(frozen=True)
class NotifyResult:
    outcome: str
    """``posted`` (2xx), ``dropped`` (non-retryable 4xx), ``skipped`` (pass, duplicate, not a report)."""
    status: int | None = None
    body_bytes: int = 0
    detail: str = ""


def urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = 15.0):
    """Default transport: one POST with urllib (no retries; Service Bus redelivers)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https URL from settings)
            return response.status, dict(response.headers.items()), response.read(4096)
    except urllib.error.HTTPError as exc:
        try:
            payload = exc.read(4096)
        except Exception:  # noqa: BLE001 - the status is what matters
            payload = b""
        status, resp_headers = exc.code, dict(exc.headers.items()) if exc.headers else {}
        exc.close()
        return status, resp_headers, payload


_SIG_RE = re.compile(r"(?i)(sig|signature|code|sv|sp)=[^&\s\"'<>]+")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(str(value).strip()))
            except ValueError:
                return None
    return None


class TeamsNotifier:
    """Posts report cards to one Teams Workflows webhook.

    ``post`` is the transport seam (default: :func:`urllib_post`). On 429 / 5xx, when Teams sends
    ``Retry-After``, the notifier waits up to ``backoff_cap`` seconds before raising, so the
    Service Bus redelivery does not hammer a throttled flow (25 posts / 5 min per connection).
    Reports already posted by this instance (same ``report_id``) are skipped.
    """

    __slots__ = ("_url", "_post", "_timeout", "_backoff_cap", "_sleep", "_seen", "_seen_max")

    def __init__(
        self,
        url: str,
        post: Transport | None = None,
        *,
        timeout: float = 15.0,
        backoff_cap: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        remember: int = 1024,
    ):
        if not url or not _safe_url(url):
            raise ValueError("TEAMS_WEBHOOK_URL must be an http(s) URL")  # no URL in the message
        self._url = url
        self._post = post
        self._timeout = timeout
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_max = remember

    def __repr__(self) -> str:
        return "TeamsNotifier(url=<redacted>)"

    __str__ = __repr__

    def _scrub(self, text: str) -> str:
        text = text.replace(self._url, "<redacted>")
        base = self._url.split("?", 1)[0]
        if base:
            text = text.replace(base, "<redacted>")
        return _SIG_RE.sub(lambda m: m.group(1) + "=<redacted>", text)

    def notify(self, report: Mapping[str, Any]) -> NotifyResult:
        report_id = _text(report.get("report_id"))
        verdict = _text(report.get("verdict")).lower()
        log_extra = {"report_id": report_id, "verdict": verdict}
        if verdict == "pass":
            logger.info("teams: pass report not posted", extra=log_extra)
            return NotifyResult("skipped", detail="pass")
        if verdict not in ("fail", "warn"):
            logger.error("teams: not a report (verdict %r); not posted", verdict[:20], extra=log_extra)
            return NotifyResult("skipped", detail="not a report")
        if report_id and report_id in self._seen:
            logger.info("teams: report already posted; duplicate skipped", extra=log_extra)
            return NotifyResult("skipped", detail="duplicate")

        body = serialise(build_card(report))
        log_extra["card_bytes"] = len(body)
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "evidence-gate"}
        try:
            if self._post is None:
                status, resp_headers, payload = urllib_post(self._url, body, headers, self._timeout)
            else:
                status, resp_headers, payload = self._post(self._url, body, headers)
        except Exception as exc:  # noqa: BLE001 - URLError, timeouts, refused or reset connections
            reason = self._scrub(f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}")
            logger.warning("teams: post failed (%s); will be retried", reason, extra=log_extra)
            raise TeamsUnavailable(f"Teams webhook unreachable ({reason})") from None

        log_extra["status"] = status
        if 200 <= status < 300:
            self._remember(report_id)
            logger.info("teams: card posted (HTTP %s, %d bytes)", status, len(body), extra=log_extra)
            return NotifyResult("posted", status=status, body_bytes=len(body))
        if status == 429 or status >= 500:
            retry_after = _retry_after(resp_headers or {})
            logger.warning(
                "teams: HTTP %s from the webhook; will be retried (Retry-After %s)",
                status,
                retry_after,
                extra=log_extra,
            )
            if retry_after and self._backoff_cap > 0:
                self._sleep(min(retry_after, self._backoff_cap))
            raise TeamsUnavailable(f"Teams webhook answered HTTP {status}", status=status, retry_after=retry_after)
        snippet = self._scrub(bytes(payload or b"")[:300].decode("utf-8", "replace"))
        logger.error(
            "teams: HTTP %s from the webhook; card dropped, not retried: %s",
            status,
            snippet,
            extra=log_extra,
        )
        return NotifyResult("dropped", status=status, body_bytes=len(body), detail=f"HTTP {status}")

    def _remember(self, report_id: str) -> None:
        if not report_id:
            return
        self._seen[report_id] = None
        while len(self._seen) > self._seen_max:
            self._seen.popitem(last=False)


def notifier_from_settings(**kwargs: Any) -> TeamsNotifier | None:
    """A notifier for ``TEAMS_WEBHOOK_URL``, or ``None`` when it is not set (for `evidence-gate serve`)."""
    from shared import settings

    url = settings.get("TEAMS_WEBHOOK_URL")
    if not url:
        return None
    return TeamsNotifier(url, **kwargs)


def notify_pending(store: Any, notifier: TeamsNotifier, limit: int = 5) -> dict[str, int]:
    """One pass of the local notifier (`evidence-gate serve`): post the store's unnotified reports.

    ``store`` is duck-typed: ``unnotified(limit) -> list[report]`` and ``mark_notified(report_id)``
    (:class:`shared.sinks.store.ReportStore`). Posted, skipped and dropped reports are marked
    notified; on a transient error the pass stops and the rest waits for the next pass. With the
    default ``limit`` and one pass a minute, the Flow bot's 25 posts / 5 minutes is respected.
    """
    counts = {"posted": 0, "skipped": 0, "dropped": 0, "retry": 0}
    for report in store.unnotified(limit):
        try:
            result = notifier.notify(report)
        except TeamsUnavailable:
            counts["retry"] += 1
            break
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if report.get("report_id"):
            store.mark_notified(report["report_id"])
    return counts
