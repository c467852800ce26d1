"""Credential detection for SEC-001 (values) and SEC-002 (file names).

A hit carries the location, the kind and a *redacted* form: at most a well-known public prefix
(``AKIA``, ``dapi``, ``ghp_``, ``eyJ``, ``AccountKey=``...) and the length. The matched value itself
never leaves this module.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretHit:
    location: str
    kind: str
    redacted: str

    def as_evidence(self) -> dict:
        return {"location": self.location, "kind": self.kind, "redacted": self.redacted}


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern
    public_prefix: str = ""  # the literal text before the secret part, safe to show


_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern("private-key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"), "-----BEGIN PRIVATE KEY-----"),
    _Pattern(
        "azure-storage-connection-string",
        re.compile(r"DefaultEndpointsProtocol=https?;AccountName=[^;]+;AccountKey=[^;\s'\"]{20,}", re.I),
        "DefaultEndpointsProtocol=",
    ),
    _Pattern(
        "servicebus-or-eventhubs-connection-string",
        re.compile(r"Endpoint=sb://[^;]+;SharedAccessKeyName=[^;]+;SharedAccessKey=[^;\s'\"]{20,}", re.I),
        "Endpoint=sb://",
    ),
    _Pattern("azure-storage-account-key", re.compile(r"AccountKey=[^;\s'\"]{40,}", re.I), "AccountKey="),
    _Pattern("azure-shared-access-key", re.compile(r"SharedAccessKey=[^;\s'\"]{20,}", re.I), "SharedAccessKey="),
    _Pattern("azure-sas-token", re.compile(r"(?:^|[?&])sv=\d{4}-\d{2}-\d{2}&(?:[^\s&]+&)*sig=[A-Za-z0-9%+/=]{16,}"), "sv="),
    _Pattern("azure-sas-token", re.compile(r"[?&]sig=[A-Za-z0-9%+/]{30,}(?:%3D|=){0,2}"), ""),
    _Pattern("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "AKIA"),
    _Pattern(
        "aws-secret-access-key",
        re.compile(r"aws_?secret_?access_?key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}", re.I),
        "aws_secret_access_key=",
    ),
    _Pattern("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "eyJ"),
    _Pattern("databricks-pat", re.compile(r"\bdapi[0-9a-f]{32}(?:-\d)?\b"), "dapi"),
    _Pattern("github-token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b"), "gh"),
    _Pattern("github-token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"), "github_pat_"),
    _Pattern("azure-storage-account-key", re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"), ""),
    _Pattern(
        "credential-assignment",
        re.compile(
            r"\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?key|token)\s*[=:]\s*['\"]?[^\s'\";&]{6,}",
            re.I,
        ),
        "",
    ),
)

# Param/tag *names* that say "this is a credential"; the value must then look like one.
_NAME_TOKENS = {"password", "passwd", "pwd", "secret", "apikey", "token", "credential", "credentials", "pat", "sas"}
_NAME_PAIRS = {("api", "key"), ("access", "key"), ("secret", "key"), ("client", "secret"), ("account", "key"),
               ("private", "key"), ("auth", "token"), ("connection", "string")}
_PLACEHOLDERS = re.compile(r"^(?:\*+|x+|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|none|null|redacted|changeme|true|false)$", re.I)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:e-?\d+)?$", re.I)

CREDENTIAL_FILE_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.pem", "*.key", "*.pfx", "*.p12", "*.jks", "*.keystore", "id_rsa", "id_dsa",
    "id_ecdsa", "id_ed25519", "credentials", "credentials.json", "credentials.yaml", "credentials.yml",
    "service-account*.json", "*serviceaccount*.json", ".netrc", ".npmrc", ".pypirc", ".git-credentials",
    "kubeconfig", ".dockercfg", "secrets.json", "secrets.yaml", "secrets.yml", "*.ovpn",
)


def redact(kind_prefix: str, value: str) -> str:
    return f"{kind_prefix}…[redacted {len(value)} chars]" if kind_prefix else f"[redacted {len(value)} chars]"


def scan_value(location: str, value: object, *, name: str | None = None) -> list[SecretHit]:
    """Credential-looking content in one value; ``name`` (a param/tag key) adds a name heuristic."""
    if value is None:
        return []
    text = str(value)
    hits: list[SecretHit] = []
    covered: list[tuple[int, int]] = []
    for pattern in _PATTERNS:
        for match in pattern.regex.finditer(text):
            span = match.span()
            if any(s <= span[0] < e or s < span[1] <= e for s, e in covered):
                continue
            covered.append(span)
            hits.append(SecretHit(location, pattern.kind, redact(pattern.public_prefix, match.group(0))))
    if not hits and name and _name_says_credential(name) and _looks_like_credential(text):
        hits.append(SecretHit(location, "credential-named-value", redact("", text)))
    return hits


def scan_mapping(prefix: str, mapping: dict) -> list[SecretHit]:
    hits: list[SecretHit] = []
    for key in sorted(mapping):
        hits.extend(scan_value(f"{prefix}.{key}", mapping[key], name=key))
    return hits


def credential_file_kind(name: str) -> str | None:
    """The pattern a file name matches, when it looks like a credential file."""
    base = name.rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith("/"):
        return None
    for pattern in CREDENTIAL_FILE_PATTERNS:
        if fnmatch.fnmatchcase(base, pattern):
            return pattern
    return None


def _name_says_credential(name: str) -> bool:
    tokens = [t for t in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()) if t]
    if any(t in _NAME_TOKENS for t in tokens):
        return True
    return any(pair in _NAME_PAIRS for pair in zip(tokens, tokens[1:], strict=False))


def _looks_like_credential(text: str) -> bool:
    text = text.strip()
    if len(text) < 8 or " " in text or _PLACEHOLDERS.match(text) or _NUMBER.match(text):
        return False
    return sum(c.isdigit() for c in text) >= 2 or sum(not c.isalnum() for c in text) >= 1 or len(text) >= 16
