"""Artifacts that live outside the tracking server: Azure Storage (:mod:`shared.evidence.azure_storage`)
and, for every other scheme, MLflow's artifact repositories (``file:``, ``s3://``, ``gs://``, ...:
imports MLflow then).

What cannot be read with the configuration at hand is :class:`~shared.errors.EvidenceUnreadable`
(EVD-008): a scheme no artifact repository serves, a client library that is not installed, a
store that refuses the credentials, a file over the size limit. Only connection trouble and
throttling stay transient.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from shared.errors import EvidenceUnreadable
from shared.evidence import azure_storage, mlflow_client
from shared.evidence.deadline import Deadline

_TRANSIENT = re.compile(r"\b(429|500|502|503|504)\b|too many requests|throttl|temporarily unavailable", re.I)
_QUERY = re.compile(r"\?\S*")  # SAS tokens and signed-URL parameters never reach a report


def too_large(name: str, location: str, limit: int) -> EvidenceUnreadable:
    return EvidenceUnreadable(f"{name} at {location}", f"the file is larger than {limit // 1024} KiB",
                              "keep MLmodel and environment files small (they are metadata)", location=location)


def list_artifacts(location: str, tracking_uri: str, *, deadline: Deadline) -> list[str]:
    if azure_storage.serves(location):
        return azure_storage.list_artifacts(location, deadline=deadline)
    try:
        return mlflow_client.list_artifacts(location, tracking_uri)
    except Exception as exc:
        raise _classified(exc, f"artifacts at {location}", location) from None


def read_artifact_text(location: str, name: str, tracking_uri: str, limit: int, *, deadline: Deadline) -> str:
    if azure_storage.serves(location):
        return azure_storage.read_artifact_text(location, name, limit, deadline=deadline)
    try:
        return mlflow_client.read_artifact_text(location, name, tracking_uri, limit)
    except Exception as exc:
        raise _classified(exc, f"{name} at {location}", location) from None


def _classified(exc: Exception, what: str, location: str) -> Exception:
    """Connection trouble and throttling stay what they are (transient, via the backend's
    translation); anything else from an artifact repository is unreadable evidence."""
    text = str(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)) or mlflow_client.connection_reason(text) or _TRANSIENT.search(text):
        return exc
    if isinstance(exc, FileNotFoundError):
        from shared.errors import NotFoundInRegistry

        return NotFoundInRegistry(f"{what}: not found")
    scheme = urlsplit(location).scheme or "file"
    if isinstance(exc, ImportError) or "Could not find a registered artifact repository" in text:
        reason = f"no artifact store for '{scheme}:' locations is available to Evidence Gate"
        fix = "keep artifacts on the tracking server (mlflow-artifacts:) or in Azure Storage, which Evidence Gate reads"
    else:
        reason = f"the '{scheme}:' store refused the read ({type(exc).__name__}: {_QUERY.sub('?…', mlflow_client.first_line(exc))})"
        fix = f"give Evidence Gate's identity read access to the '{scheme}:' artifact store"
    return EvidenceUnreadable(what, reason, fix, location=location)
