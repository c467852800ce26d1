"""Signature and credential checks for every webhook source. Constant-time comparisons only.

Each check raises :class:`shared.sources.Unauthorized` with a reason that never quotes the
secret or the presented signature. An unset secret refuses every delivery: the HTTP routes are
anonymous at the Functions level, so the signature is the only authentication.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from shared.errors import Unauthorized

MLFLOW_SIGNATURE_HEADER = "X-MLflow-Signature"
MLFLOW_TIMESTAMP_HEADER = "X-MLflow-Timestamp"
MLFLOW_DELIVERY_HEADER = "X-MLflow-Delivery-Id"
MLFLOW_TOLERANCE_SECONDS = 300
DATABRICKS_SIGNATURE_HEADER = "X-Databricks-Signature"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (func.HttpRequest headers already are; plain dicts may not be)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


# -- Databricks Model Registry: lowercase hex HMAC-SHA256 of the raw body --------------------------
def databricks_signature(secret: str, body: bytes) -> str:
    return hmac_sha256(secret, body).hex()


def verify_databricks(headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
    if not secret:
        raise Unauthorized("DATABRICKS_WEBHOOK_SECRET is not set: every Databricks registry delivery is refused")
    presented = _header(headers, DATABRICKS_SIGNATURE_HEADER)
    if presented is None:
        raise Unauthorized(f"missing {DATABRICKS_SIGNATURE_HEADER} header")
    expected = databricks_signature(secret, body)
    if not hmac.compare_digest(expected.encode("ascii"), presented.lower().encode("utf-8", "replace")):
        raise Unauthorized(f"{DATABRICKS_SIGNATURE_HEADER} does not match the body")


# -- open-source MLflow 3 webhooks: v1,<base64 HMAC of delivery_id.timestamp.body> ---------------
def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = delivery_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    return "v1," + base64.b64encode(hmac_sha256(secret, signed)).decode("ascii")


def verify_mlflow(headers: Mapping[str, str], body: bytes, secret: str | None, *, now: float | None = None,
                  tolerance: int = MLFLOW_TOLERANCE_SECONDS) -> str:
    """Verify an MLflow webhook delivery; returns its delivery id."""
    if not secret:
        raise Unauthorized("MLFLOW_WEBHOOK_SECRET is not set: every MLflow webhook delivery is refused")
    delivery_id = _header(headers, MLFLOW_DELIVERY_HEADER)
    timestamp = _header(headers, MLFLOW_TIMESTAMP_HEADER)
    presented = _header(headers, MLFLOW_SIGNATURE_HEADER)
    for name, value in ((MLFLOW_SIGNATURE_HEADER, presented), (MLFLOW_TIMESTAMP_HEADER, timestamp),
                        (MLFLOW_DELIVERY_HEADER, delivery_id)):
        if value is None:
            raise Unauthorized(f"missing {name} header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthorized(f"{MLFLOW_TIMESTAMP_HEADER} is not unix seconds")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise Unauthorized(f"{MLFLOW_TIMESTAMP_HEADER} is more than {tolerance} s away from now (stale or replayed delivery)")
    expected = hmac_sha256(secret, delivery_id.encode("utf-8") + b"." + timestamp.encode("ascii") + b"." + body)
    for candidate in presented.split():  # several signatures may be sent during a secret rotation
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            decoded = base64.b64decode(value.encode("ascii", "replace"), validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, decoded):
            return delivery_id
    raise Unauthorized(f"{MLFLOW_SIGNATURE_HEADER} does not match the delivery")


# -- Databricks job notifications: HTTP Basic -------------------------------------------------------
def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def verify_basic(headers: Mapping[str, str], username: str | None, password: str | None) -> None:
    if not username or not password:
        raise Unauthorized("DATABRICKS_JOBS_WEBHOOK_USERNAME/PASSWORD are not set: every job notification is refused")
    presented = _header(headers, "Authorization")
    if presented is None:
        raise Unauthorized("missing Authorization header (HTTP Basic)")
    scheme, _, token = presented.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise Unauthorized("Authorization is not HTTP Basic")
    try:
        decoded = base64.b64decode(token.strip().encode("ascii", "replace"), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("Authorization Basic credentials are not base64") from None
    user, sep, pwd = decoded.partition(b":")
    ok_user = hmac.compare_digest(user, username.encode("utf-8"))
    ok_pwd = hmac.compare_digest(pwd, password.encode("utf-8"))
    if not (sep and ok_user and ok_pwd):
        raise Unauthorized("wrong Basic credentials")
