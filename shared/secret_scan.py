"""Credential detection for SEC-001 (values) and SEC-002 (file names).

A hit carries the location, the kind and a *redacted* form: the public prefix that names the kind
where the vendor's format has one (``AKIA``, ``ghp_``, ``sk-``, ``hf_``, ``xoxb-``...), then the
total length of the credential, e.g. ``AKIA…[20 chars, redacted]``; kinds without a public prefix
show only ``[88 chars, redacted]``. The matched value itself never leaves this module.

Secret *references* are never credentials: Key Vault references and secret URIs, Databricks
``{{secrets/scope/key}}`` and ``dbutils.secrets.get(...)``, ``${VAR}`` / ``$VAR`` / ``%VAR%``, and an
environment variable's *name* given as the value of a credential-named param.

tests/secrets/corpus.py is the labelled corpus these patterns are measured against
(bench/secret_detection.py, docs/performance.md).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretHit:
    location: str
    kind: str
    redacted: str

    def as_evidence(self) -> dict:
        return {"location": self.location, "kind": self.kind, "redacted": self.redacted}


@dataclass(frozen=True)
class Kind:
    """One recognised kind of credential, as docs/rules.md lists it."""

    name: str
    what: str


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern
    # The regex's ``pub`` group is the vendor's public prefix, shown in the redacted form; the ``value``
    # group, when there is one, is the part that must not be a reference or a placeholder.
    accept: Callable[[str], bool] | None = None  # a further test of the whole match
    value_test: Callable[[str], bool] = lambda value: _looks_like_value(value)  # noqa: E731 - defined below


KINDS: tuple[Kind, ...] = (
    Kind("private-key", "PEM private key block: RSA, EC, DSA, OpenSSH, PKCS#8 (also encrypted), PGP"),
    Kind("pkcs12", "PKCS#12 / PFX key store, base64-encoded"),
    Kind("gcp-service-account-key", "Google Cloud service-account key JSON (`private_key_id`)"),
    Kind("azure-storage-connection-string", "Azure Storage connection string with `AccountKey=`"),
    Kind("servicebus-or-eventhubs-connection-string", "Service Bus / Event Hubs connection string with `SharedAccessKey=`"),
    Kind("azure-storage-account-key", "Azure Storage / Cosmos DB account key (`AccountKey=...`, or 88 base64 characters)"),
    Kind("azure-shared-access-key", "`SharedAccessKey=...` outside a full connection string"),
    Kind("azure-sas-token", "Azure shared access signature (`sig=` in a URL or SAS token)"),
    Kind("entra-client-secret", "Microsoft Entra ID application client secret (`...Q~...`)"),
    Kind("teams-webhook-url", "Microsoft Teams incoming webhook or Workflows (Power Automate / Logic Apps) trigger URL"),
    Kind("aws-access-key-id", "AWS access key id (`AKIA`, `ASIA` and the other IAM unique-id prefixes)"),
    Kind("aws-secret-access-key", "AWS secret access key: 40 base64 characters, named or standing alone"),
    Kind("gcp-api-key", "Google API key (`AIza...`)"),
    Kind("databricks-pat", "Databricks personal access token (`dapi...`)"),
    Kind("databricks-oauth-secret", "Databricks service-principal OAuth secret (`dose...`)"),
    Kind("github-token", "GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`)"),
    Kind("gitlab-token", "GitLab token (`glpat-`, `gldt-`, `glrt-`, `glptt-`, `glcbt-`, `glsoat-`, `gloas-`)"),
    Kind("anthropic-api-key", "Anthropic API key (`sk-ant-...`)"),
    Kind("openai-api-key", "OpenAI API key (`sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`)"),
    Kind("huggingface-token", "Hugging Face access token (`hf_...`, `api_org_...`)"),
    Kind("wandb-api-key", "Weights & Biases API key (40 hex after `WANDB_API_KEY`/`wandb login`, or `local-...`)"),
    Kind("pypi-token", "PyPI / TestPyPI upload token (`pypi-AgEIcHlwaS5vcmc...`; detect-secrets' pattern)"),
    Kind("npm-token", "npm access token (`npm_...`, or `_authToken=` in an `.npmrc`; after detect-secrets)"),
    Kind("stripe-key", "Stripe live secret or restricted key (`sk_live_`, `rk_live_`; detect-secrets' pattern)"),
    Kind("sendgrid-api-key", "SendGrid API key (`SG.<22>.<43>`; detect-secrets' pattern)"),
    Kind("slack-token", "Slack token (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-`, `xapp-`)"),
    Kind("slack-webhook-url", "Slack incoming webhook / workflow trigger URL"),
    Kind("url-credentials", "a password in a URL: `https://user:pw@host`, `postgresql+psycopg2://...`, `redis://:pw@...`, broker URLs"),
    Kind("jwt", "JSON Web Token (three base64url parts, `eyJ...`)"),
    Kind("credential-assignment", "`password=`, `pwd=`, `secret=`, `api_key=`, `token=`... in a connection string (JDBC, ODBC, ADO.NET), query string, YAML or JSON"),
    Kind("credential-named-value", "a credential-looking value of a param or tag whose name says credential (`db_password`, `hf_token`, ...)"),
)

# Secret-store references and variable names: never a credential (docs/rules.md lists them).
REFERENCE_FORMATS: tuple[tuple[str, re.Pattern], ...] = (
    ("Key Vault reference `@Microsoft.KeyVault(SecretUri=...)` / `@Microsoft.KeyVault(VaultName=...;SecretName=...)`",
     re.compile(r"@Microsoft\.KeyVault\([^)]*\)", re.I)),
    ("Key Vault secret URI `https://<vault>.vault.azure.net/secrets/<name>[/<version>]`",
     re.compile(r"https://[a-z0-9-]+\.(?:vault\.azure\.net|vault\.azure\.cn|vault\.usgovcloudapi\.net|managedhsm\.azure\.net)"
                r"(?::443)?/(?:secrets|keys|certificates)/[^\s'\"]*", re.I)),
    ("Databricks secret reference `{{secrets/<scope>/<key>}}`", re.compile(r"\{\{\s*secrets/[^}\s]+\s*\}\}")),
    ("Databricks `dbutils.secrets.get(scope=..., key=...)`", re.compile(r"dbutils\.secrets\.get(?:Bytes)?\([^)]*\)")),
    ("GitHub Actions `${{ secrets.NAME }}`", re.compile(r"\$\{\{\s*[A-Za-z_][\w.]*\s*\}\}")),
    ("variable `${NAME}` (also `${env:NAME}`, `${secrets.NAME}`)", re.compile(r"\$\{[A-Za-z_][\w.:-]*\}")),
    ("variable `$NAME` / `%NAME%`", re.compile(r"(?<![\w$])\$[A-Za-z_]\w*\b|%[A-Za-z_]\w*%")),
)
ENV_VAR_NAME_FORMAT = "an environment variable's name (`SCORING_API_KEY`) as the value of a credential-named param"

_B64 = "A-Za-z0-9+/"
_NOT_PLACEHOLDER = re.compile(r"^(?:\*+|x{3,}|X{3,}|<[^>]*>|\[[^\]]*\]|\{[^}]*\}|none|null|nil|redacted|changeme|"
                              r"password|secret|true|false|\.{3}|…)$", re.I)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _class(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3


def _standalone_aws_secret(token: str) -> bool:
    """40 base64 characters standing alone are an AWS secret key only when they look random: both
    cases, not hex, high character entropy, and the character class (lower, upper, digit, ``+/``)
    changing at most characters, as in random base64 (about 25 changes in 39; camelCase
    identifiers and paths change about 10 times). Measured on tests/secrets/corpus.py."""
    changes = sum(_class(a) != _class(b) for a, b in zip(token, token[1:], strict=False))
    return (any(c.isupper() for c in token) and any(c.islower() for c in token)
            and not re.fullmatch(r"[0-9a-fA-F]+", token) and _entropy(token) >= 4.0 and changes >= 15)


_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern("private-key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        re.S)),
    _Pattern("pkcs12", re.compile(rf"(?<![{_B64}])MI[IJKL][{_B64}]{{2}}[AQgw]IBAzCC[{_B64}]{{40,}}={{0,2}}")),
    _Pattern("gcp-service-account-key", re.compile(r"[\"']?private_key_id[\"']?\s*:\s*[\"']?[0-9a-f]{40}")),
    _Pattern("azure-storage-connection-string", re.compile(
        r"DefaultEndpointsProtocol=https?;(?:[^;\s]+;)*?AccountName=[^;\s]+;AccountKey=(?P<value>[^;\s'\"]{20,})[^\s'\"]*", re.I)),
    _Pattern("servicebus-or-eventhubs-connection-string", re.compile(
        r"Endpoint=sb://[^;\s]+;SharedAccessKeyName=[^;\s]+;SharedAccessKey=(?P<value>[^;\s'\"]{20,})[^\s'\"]*", re.I)),
    _Pattern("azure-storage-account-key", re.compile(r"AccountKey=(?P<value>[^;\s'\"]{40,})", re.I)),
    _Pattern("azure-shared-access-key", re.compile(r"SharedAccessKey=(?P<value>[^;\s'\"]{20,})", re.I)),
    _Pattern("teams-webhook-url", re.compile(
        r"https://[a-z0-9-]+\.webhook\.office\.com/webhookb2/[^\s'\"]{20,}"
        r"|https://outlook\.office(?:365)?\.com/webhook/[^\s'\"]{20,}"
        r"|https://[a-z0-9.-]+\.(?:logic\.azure\.com|api\.powerplatform\.com)(?::443)?/[^\s'\"]*[?&]sig=[^\s&'\"]{20,}",
        re.I)),
    _Pattern("slack-webhook-url", re.compile(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}")),
    _Pattern("azure-sas-token", re.compile(r"(?:^|[?&])sv=\d{4}-\d{2}-\d{2}&(?:[^\s&]+&)*sig=[A-Za-z0-9%+/=_-]{16,}")),
    _Pattern("azure-sas-token", re.compile(r"(?:^|[?&])sig=[A-Za-z0-9%+/_-]{30,}(?:%3D|=){0,2}")),
    _Pattern("entra-client-secret", re.compile(r"(?<![\w~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![\w~.-])")),
    _Pattern("aws-access-key-id", re.compile(
        r"\b(?P<pub>AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|AKPA|ANPA|ANVA|APKA|AROA|ASCA)[0-9A-Z]{16}\b")),
    _Pattern("aws-secret-access-key", re.compile(
        rf"aws_?secret_?access_?key[\"']?\s*[=:]\s*[\"']?(?P<value>[{_B64}]{{40}})(?![{_B64}])", re.I)),
    _Pattern("gcp-api-key", re.compile(r"\b(?P<pub>AIza)[0-9A-Za-z_-]{35}(?![\w-])")),
    _Pattern("databricks-pat", re.compile(r"\b(?P<pub>dapi)[0-9a-f]{32}(?:-\d)?\b")),
    _Pattern("databricks-oauth-secret", re.compile(r"\b(?P<pub>dose)[0-9a-f]{32}\b")),
    _Pattern("github-token", re.compile(r"\b(?P<pub>gh[pousr]_)[A-Za-z0-9]{36,}\b")),
    _Pattern("github-token", re.compile(r"\b(?P<pub>github_pat_)[A-Za-z0-9_]{40,}\b")),
    _Pattern("gitlab-token", re.compile(r"\b(?P<pub>gl(?:pat|dt|rt|ptt|cbt|soat|oas)-)[A-Za-z0-9_.-]{20,}")),
    _Pattern("anthropic-api-key", re.compile(r"(?<![\w-])(?P<pub>sk-ant-)(?:api|admin|sid)\d\d-[A-Za-z0-9_-]{40,}")),
    _Pattern("openai-api-key", re.compile(
        r"(?<![\w-])(?P<pub>sk-(?:proj-|svcacct-|admin-)?)[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}(?![\w-])")),
    _Pattern("openai-api-key", re.compile(r"(?<![\w-])(?P<pub>sk-(?:proj|svcacct|admin)-)[A-Za-z0-9_-]{40,}(?![\w-])")),
    _Pattern("openai-api-key", re.compile(r"(?<![\w-])(?P<pub>sk-)[A-Za-z0-9]{48}(?![\w-])")),
    _Pattern("huggingface-token", re.compile(r"\b(?P<pub>hf_|api_org_)[A-Za-z0-9]{30,}\b")),
    _Pattern("wandb-api-key", re.compile(r"\b(?P<pub>local-)[0-9a-f]{40}\b")),
    _Pattern("wandb-api-key", re.compile(
        r"(?:wandb[_-]?api[_-]?key[\"']?\s*[=:]\s*[\"']?|wandb\s+login\s+(?:--\S+\s+)*)(?P<value>[0-9a-f]{40})\b", re.I)),
    # The next four are detect-secrets 1.5.0's patterns (plugins pypi_token, npm, stripe, sendgrid).
    _Pattern("pypi-token", re.compile(r"\b(?P<pub>pypi-)(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{70,}")),
    _Pattern("npm-token", re.compile(r"\b(?P<pub>npm_)[A-Za-z0-9]{36}\b")),
    _Pattern("npm-token", re.compile(r"//[^\s]+/:_authToken=\s*(?P<value>[A-Za-z0-9_-]{20,})")),
    _Pattern("stripe-key", re.compile(r"\b(?P<pub>[rs]k_live_)[0-9a-zA-Z]{24,}\b")),
    _Pattern("sendgrid-api-key", re.compile(r"\b(?P<pub>SG\.)[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![\w-])")),
    _Pattern("slack-token", re.compile(r"\b(?P<pub>xox[abposre]-)[0-9A-Za-z-]{10,}")),
    _Pattern("slack-token", re.compile(r"\b(?P<pub>xapp-)\d-[A-Z0-9]+-\d+-[a-z0-9]+")),
    _Pattern("jwt", re.compile(r"\b(?P<pub>eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    _Pattern("url-credentials", re.compile(
        r"\b[a-z][a-z0-9+.-]*://[^\s:/@?#;'\"]*:(?P<value>(?!\d+@)[^\s/@?#;'\"]+)@[^\s/?#@'\"]+", re.I)),
    _Pattern("azure-storage-account-key", re.compile(rf"(?<![{_B64}=_:-])[{_B64}]{{86}}==(?![{_B64}=])")),
    _Pattern("credential-assignment", re.compile(
        r"(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|client_secret|secret_key|api[_-]?key|access[_-]?key"
        r"|auth[_-]?token|access[_-]?token|sas[_-]?token|(?<![A-Za-z0-9_-])token)[\"']?\s*[=:]\s*[\"']?"
        r"(?P<value>[^\s'\";&,}]{6,})", re.I), value_test=lambda value: _looks_like_credential(value)),
    _Pattern("aws-secret-access-key", re.compile(rf"(?<![{_B64}_-])[{_B64}]{{40}}(?![{_B64}=_-])"),
             accept=_standalone_aws_secret),
)

# Param/tag *names* that say "this is a credential"; the value must then look like one.
_NAME_TOKENS = {"password", "passwd", "pwd", "secret", "apikey", "token", "credential", "credentials", "pat", "sas",
                "passphrase"}
_KEY_QUALIFIERS = {"api", "access", "secret", "account", "private", "storage", "master", "signing", "encryption",
                   "shared", "subscription", "openai", "anthropic", "wandb", "hf", "service", "client"}
_NAME_PAIRS = {("client", "secret"), ("auth", "token"), ("connection", "string")}
# A last name part that makes the param *about* a credential rather than the credential itself.
_ABOUT_CREDENTIAL = {"name", "names", "id", "ids", "url", "uri", "endpoint", "path", "file", "dir", "scope", "env",
                     "var", "variable", "ref", "reference", "length", "len", "ttl", "expiry", "expires", "type", "kind",
                     "version", "count", "limit", "header", "field", "provider", "store", "vault", "location",
                     "source", "enabled", "required", "min", "max", "rotation", "days", "policy"}
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:e-?\d+)?$", re.I)
_ENV_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_PLAIN_URL = re.compile(r"^[a-z][a-z0-9+.-]*:/{0,2}[^\s]*$", re.I)

CREDENTIAL_FILE_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.pem", "*.key", "*.pfx", "*.p12", "*.jks", "*.keystore", "id_rsa", "id_dsa",
    "id_ecdsa", "id_ed25519", "credentials", "credentials.json", "credentials.yaml", "credentials.yml",
    "service-account*.json", "*serviceaccount*.json", ".netrc", ".npmrc", ".pypirc", ".git-credentials",
    "kubeconfig", ".dockercfg", "secrets.json", "secrets.yaml", "secrets.yml", "*.ovpn",
)


def redact(public_prefix: str, total_length: int) -> str:
    """``AKIA…[20 chars, redacted]``: the vendor's public prefix (or nothing) and the credential's total length."""
    shown = f"{total_length} chars, redacted"
    return f"{public_prefix}…[{shown}]" if public_prefix else f"[{shown}]"


def is_reference(text: str) -> bool:
    """The whole value is a secret-store reference or a variable, not a credential."""
    text = text.strip().strip("'\"")
    return any(regex.fullmatch(text) for _, regex in REFERENCE_FORMATS)


def _reference_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for _, regex in REFERENCE_FORMATS for m in regex.finditer(text)]


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in spans)


def scan_value(location: str, value: object, *, name: str | None = None) -> list[SecretHit]:
    """Credential-looking content in one value; ``name`` (a param/tag key) adds a name heuristic."""
    if value is None:
        return []
    text = str(value)
    hits: list[SecretHit] = []
    references = _reference_spans(text)
    covered: list[tuple[int, int]] = []
    for pattern in _PATTERNS:
        for match in pattern.regex.finditer(text):
            span = match.span()
            if _overlaps(span, covered) or _overlaps(span, references):
                continue
            groups = match.groupdict()
            if groups.get("value") is not None and not pattern.value_test(groups["value"]):
                continue
            if pattern.accept is not None and not pattern.accept(match.group(0)):
                continue
            covered.append(span)
            hits.append(SecretHit(location, pattern.kind, redact(groups.get("pub") or "", len(match.group(0)))))
    if not hits and name and _name_says_credential(name) and _looks_like_credential(text):
        hits.append(SecretHit(location, "credential-named-value", redact("", len(text.strip()))))
    return hits


def scan_mapping(prefix: str, mapping: dict) -> list[SecretHit]:
    hits: list[SecretHit] = []
    for key in sorted(mapping):
        hits.extend(scan_value(f"{prefix}.{key}", mapping[key], name=key))
    return hits


def credential_file_kind(name: str) -> str | None:
    """The pattern a file's name (or relative path: its last part) matches, when it looks like a credential file."""
    base = name.rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith("/"):
        return None
    for pattern in CREDENTIAL_FILE_PATTERNS:
        if fnmatch.fnmatchcase(base, pattern):
            return pattern
    return None


def _name_says_credential(name: str) -> bool:
    tokens = [t for t in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()) if t]
    if not tokens or tokens[-1] in _ABOUT_CREDENTIAL:
        return False
    if any(t in _NAME_TOKENS for t in tokens):
        return True
    pairs = list(zip(tokens, tokens[1:], strict=False))
    return any(pair in _NAME_PAIRS for pair in pairs) or any(a in _KEY_QUALIFIERS and b == "key" for a, b in pairs)


def _looks_like_value(text: str) -> bool:
    """A value after ``password=`` / in a URL's user info: not a placeholder, mask or reference."""
    text = text.strip().strip("'\"")
    return bool(text) and not _NOT_PLACEHOLDER.match(text) and not is_reference(text) and not _ENV_VAR_NAME.match(text)


def _looks_like_credential(text: str) -> bool:
    text = text.strip()
    if len(text) < 8 or " " in text or not _looks_like_value(text) or _NUMBER.match(text) or _PLAIN_URL.match(text):
        return False
    return sum(c.isdigit() for c in text) >= 2 or sum(not c.isalnum() for c in text) >= 1 or len(text) >= 16
