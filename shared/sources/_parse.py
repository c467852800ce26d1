"""Small, total helpers for the payload parsers: every failure is a BadInput."""

from __future__ import annotations

import json
from typing import Any

from shared.errors import BadInput

MAX_TEXT = 1024


def load_json(body: bytes | str, what: str) -> Any:
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadInput(f"{what}: body is not UTF-8") from None
    if not isinstance(body, str) or not body.strip():
        raise BadInput(f"{what}: empty body")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"{what}: body is not JSON ({str(exc)[:120]})") from None


def obj(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object, not {_kind(value)}")
    return value


def text(value: Any, what: str, *, required: bool = True) -> str | None:
    """A non-empty string without control characters; numbers (not booleans) become strings."""
    if value is None or value == "":
        if required:
            raise BadInput(f"{what} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise BadInput(f"{what} must be a string or an integer, not {_kind(value)}")
    out = str(value).strip()
    if not out:
        if required:
            raise BadInput(f"{what} is empty")
        return None
    if len(out) > MAX_TEXT:
        raise BadInput(f"{what} is longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in out):
        raise BadInput(f"{what} contains control characters")
    return out


def lower_keys(data: dict) -> dict:
    """Case-insensitive view of a dict's string keys (PascalCase and camelCase alike)."""
    return {k.lower(): v for k, v in data.items() if isinstance(k, str)}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)
