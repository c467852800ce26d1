"""The intake queue and its poison queue: Azure Storage queues on the app's own storage account,
through ``azure-storage-queue``.

The connection ``EVIDENCE_GATE_INTAKE`` follows the Functions convention the queue trigger reads
too: ``EVIDENCE_GATE_INTAKE`` itself is a connection string (Azurite, or an account key);
``EVIDENCE_GATE_INTAKE__queueServiceUri`` (+ ``__credential`` ``managedidentity`` and
``__clientId``) is the identity-based connection used in Azure. The poison queue is
``<queue>-poison``, the name the Functions host uses for messages that failed ``maxDequeueCount``
times. Message bodies are base64-encoded text (the trigger's default ``messageEncoding``).

Every SDK failure becomes an error of the taxonomy: unreachable, timed out, throttled or 5xx ->
:class:`~shared.errors.IntakeUnavailable`; refused identity or a missing queue ->
:class:`~shared.errors.ConfigurationError` naming the role or setting to fix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, QueueMessage, TextBase64EncodePolicy

from shared import settings
from shared.errors import BadInput, ConfigurationError, IntakeUnavailable
from shared.intake.message import IntakeMessage, encode

INTAKE = settings.INTAKE_CONNECTION
POISON_SUFFIX = "-poison"
MAX_TEXT_BYTES = 48 * 1024  # 64 KiB per message on the queue, base64 takes 4/3
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
ROLES = "'Storage Queue Data Message Sender' and 'Storage Queue Data Message Processor'"
# Bounded retries inside the SDK: a queue outage answers the delivery 503 within seconds.
CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.4, "retry_backoff_max": 2,
                                  "connection_timeout": 5, "read_timeout": 10}


def _reason(exc: Exception) -> str:
    """What went wrong, without the exception's text (it can carry a SAS query string)."""
    if isinstance(exc, HttpResponseError) and exc.status_code:
        code = getattr(exc, "error_code", None)
        return f"HTTP {exc.status_code}{f' {code}' if code else ''}"
    return "timed out" if "timeout" in type(exc).__name__.lower() else f"connection failed ({type(exc).__name__})"


@contextmanager
def _calls(queue_name: str) -> Iterator[None]:
    try:
        yield
    except ResourceNotFoundError as exc:
        raise ConfigurationError(f"the intake queue '{queue_name}' does not exist: provision it (infra/ creates it)"
                                 f" or fix EVIDENCE_GATE_INTAKE_QUEUE ({_reason(exc)})") from None
    except ClientAuthenticationError as exc:
        raise ConfigurationError(f"the intake queue refused Evidence Gate's identity ({_reason(exc)}): grant the"
                                 f" app's identity {ROLES} on it, or fix the {INTAKE} setting") from None
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise ConfigurationError(f"the intake queue answered {_reason(exc)}: grant the app's identity {ROLES}"
                                     f" on '{queue_name}'") from None
        if exc.status_code in TRANSIENT_STATUS or exc.status_code is None:
            raise IntakeUnavailable(_reason(exc), status=exc.status_code) from None
        raise
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise IntakeUnavailable(_reason(exc)) from None


def _options() -> dict[str, Any]:
    return {**CLIENT_OPTIONS, "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": BinaryBase64DecodePolicy()}


class IntakeQueue:
    """Put events on the intake queue, put them back with a delay, dead-letter them; and (for
    ``evidence-gate serve``) receive and delete like the Functions host."""

    def __init__(self, queue: QueueClient, poison: QueueClient, *, create: bool = False,
                 clock: Callable[[], float] = time.time):
        """``create``: create both queues when missing (a connection string: Azurite, development)."""
        self.queue, self.poison_queue, self.clock = queue, poison, clock
        if create:
            for client in (queue, poison):
                with _calls(client.queue_name):
                    try:
                        client.create_queue()
                    except ResourceExistsError:
                        pass

    @property
    def name(self) -> str:
        return self.queue.queue_name

    @classmethod
    def from_settings(cls) -> IntakeQueue | None:
        """The queues of the ``EVIDENCE_GATE_INTAKE`` connection, or None when it is not configured."""
        name = settings.get("EVIDENCE_GATE_INTAKE_QUEUE")
        connection = settings.get(INTAKE)
        if connection:
            try:
                clients = [QueueClient.from_connection_string(connection, q, **_options())
                           for q in (name, name + POISON_SUFFIX)]
            except ValueError:
                raise ConfigurationError(f"{INTAKE} is not a valid storage connection string") from None
            return cls(*clients, create=True)
        uri = settings.get(f"{INTAKE}__queueServiceUri")
        if not uri:
            return None
        if not uri.startswith("https://"):
            raise ConfigurationError(f"{INTAKE}__queueServiceUri must be https://<account>.queue.core.windows.net")
        from shared.azure_credential import credential

        identity = credential(settings.get(f"{INTAKE}__clientId"))
        return cls(*(QueueClient(uri, q, credential=identity, **_options()) for q in (name, name + POISON_SUFFIX)))

    # -- producing ---------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def accept(self, event) -> IntakeMessage:
        """Enqueue a new delivery (attempt 1, accepted now)."""
        message = IntakeMessage(event, accepted_ms=self.now_ms())
        self.put(message)
        return message

    def put(self, message: IntakeMessage, delay_seconds: float = 0) -> None:
        text = encode(message)
        if len(text.encode()) > MAX_TEXT_BYTES:
            raise BadInput(f"the event is {len(text.encode())} bytes normalised, more than the intake queue's"
                           f" {MAX_TEXT_BYTES}")
        with _calls(self.name):
            self.queue.send_message(text, visibility_timeout=int(round(delay_seconds)) or None)

    def dead_letter(self, body: bytes | str, reason: str, *, attempts: int | None = None) -> None:
        """Put the message on the poison queue with its reason (kept until someone reads it)."""
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            original: Any = json.loads(raw)
        except ValueError:
            original = raw
        letter = {"reason": reason, "attempts": attempts, "message": original,
                  "dead_lettered_at": datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds")}
        text = json.dumps(letter, separators=(",", ":"), default=str)[:MAX_TEXT_BYTES]
        with _calls(self.poison_queue.queue_name):
            self.poison_queue.send_message(text, time_to_live=-1)

    # -- consuming (evidence-gate serve) -----------------------------------------------------
    def receive(self, max_messages: int, visibility_timeout: int) -> list[QueueMessage]:
        """One GetMessages call (the first page only: the pager would ask again for the rest)."""
        with _calls(self.name):
            pages = self.queue.receive_messages(messages_per_page=max_messages,
                                                visibility_timeout=visibility_timeout).by_page()
            return list(next(pages, []))

    def release(self, message: QueueMessage, visibility_timeout: int) -> None:
        """Make a received message visible again after ``visibility_timeout`` seconds (a failed invocation)."""
        with _calls(self.name):
            # by id and pop receipt: the visibility alone changes, the content stays as it is
            self.queue.update_message(message.id, pop_receipt=message.pop_receipt, visibility_timeout=visibility_timeout)

    def delete(self, message: QueueMessage) -> None:
        with _calls(self.name):
            try:
                self.queue.delete_message(message)
            except HttpResponseError as exc:  # already gone: its visibility ran out and another instance took it
                if exc.status_code != 404 and getattr(exc, "error_code", None) != "PopReceiptMismatch":
                    raise
