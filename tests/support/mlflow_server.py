"""A real MLflow tracking server (SQL backend, proxied artifacts) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

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

    def start(self, timeout: float = 90) -> MlflowServer:
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
                raise RuntimeError(f"mlflow server exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
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
