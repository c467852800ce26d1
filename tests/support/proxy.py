"""A real HTTP proxy in front of the MLflow server: counts requests and injects faults
(status codes with Retry-After, connection resets, latency)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Fault:
    status: int | None = None  # answer this status instead of forwarding
    retry_after: int | None = None
    reset: bool = False  # close the connection without answering
    delay: float = 0.0  # then forward after this delay
    body: bytes | None = None  # the answer's JSON body (default: an MLflow error)
    headers: tuple[tuple[str, str], ...] = ()  # extra answer headers


def api_class(path: str) -> str:
    """The rate-limit class of a request as Databricks counts it (registry / tracking / search),
    from the path the proxy received: an independent check of the client's own classification."""
    path = path.split("?")[0]
    # the Model Registry, MLflow's Unity Catalog paths included, and the UC models API (Databricks)
    if any(part in path for part in ("/model-versions/", "/registered-models/", "/transition-requests/",
                                     "/unity-catalog/models")):
        return "registry"
    if path.endswith(("/mlflow/runs/search", "/mlflow/experiments/search")):
        return "search"
    return "tracking"


class CountingProxy:
    def __init__(self, upstream: str):
        target = urlsplit(upstream)
        self.upstream_host, self.upstream_port = target.hostname, target.port
        self.requests: list[tuple[str, str]] = []
        self.faults: deque[Fault] = deque()
        self.always: Fault | None = None
        self.matching: dict[str, Fault] = {}  # fault for every request whose decoded path contains the key
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.requests.append((self.command, self.path))
                    fault = proxy.faults.popleft() if proxy.faults else proxy.always
                    decoded = unquote(self.path)
                    for needle, matching in proxy.matching.items():
                        if needle in decoded:
                            fault = matching
                if fault is not None:
                    if fault.reset:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.close_connection = True
                        self.connection.close()
                        return
                    if fault.status:
                        payload = fault.body or b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected"}'
                        self.send_response(fault.status)
                        for name, value in fault.headers:
                            self.send_header(name, value)
                        if fault.retry_after is not None:
                            self.send_header("Retry-After", str(fault.retry_after))
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    time.sleep(fault.delay)
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.always = None
            self.matching.clear()

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def count_by_class(self) -> dict[str, int]:
        """Requests so far by :func:`api_class`."""
        with self._lock:
            paths = [path for _, path in self.requests]
        counts = {"registry": 0, "tracking": 0, "search": 0}
        for path in paths:
            counts[api_class(path)] += 1
        return counts
