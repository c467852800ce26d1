"""The local stack of `make demo`, `make serve` and the tests: a real MLflow tracking server (SQL
backend, proxied artifacts), `evidence-gate serve`, and a Teams endpoint that keeps what it receives.
Everything listens on loopback and is stopped by :class:`Stack` on exit, Ctrl-C or failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEBHOOK_ENCRYPTION_KEY = "yV0sqw0bh7Zp1c9HbXH6b3zC7fA3n9vBq2Wm4Lr8T1E="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, root: str, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(root, "server.log")

    def start(self, timeout: float = 180) -> MlflowServer:
        os.makedirs(self.root, exist_ok=True)
        env = dict(os.environ,
                   MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
                   MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
                   MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=WEBHOOK_ENCRYPTION_KEY)
        cmd = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{os.path.join(self.root, 'mlflow.db')}",
               "--artifacts-destination", os.path.join(self.root, "artifacts"),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"mlflow server exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()  # never leave a half-started server (and its workers) running
        raise RuntimeError(f"mlflow server did not start in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()


class TeamsInbox:
    """A local stand-in for a Teams Workflows webhook: answers 202 and keeps every card as JSON."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.received: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                import json

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                inbox.received.append(payload)
                path = inbox.folder / f"card-{len(inbox.received):02d}.json"
                path.write_text(json.dumps(payload, indent=2))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/evidence-gate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ServeProcess:
    """`evidence-gate serve` in a child process, with its log in a file."""

    def __init__(self, env: dict, log_path: str, port: int | None = None, extra_args: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        cli = os.path.join(os.path.dirname(sys.executable), "evidence-gate")
        self.proc = subprocess.Popen([cli, "serve", "--port", str(self.port), *extra_args], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"evidence-gate serve exited early; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"evidence-gate serve did not start; see {log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class Stack(ExitStack):
    """Stops what was started, in reverse order, on exit, exception, Ctrl-C or SIGTERM."""

    def __enter__(self):
        super().__enter__()
        self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def start(self, component, stop=None):
        self.callback(stop or component.stop)
        return component

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            signal.signal(signal.SIGTERM, self._previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
