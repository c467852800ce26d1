"""Azurite, Microsoft's Azure Storage emulator (npm package ``azurite``, pinned in
tests/support/azurite-emulator/, installed by ``make setup-azurite``), on free loopback ports.

Blob, Queue and Table run as three processes (``azurite-blob``, ``azurite-queue``,
``azurite-table``) so the Table service can be stopped and started again on its port for the
"state store down" tests while Blob and Queue keep running. Blob and Queue keep their data in
memory; Table keeps it on disk under ``location`` so it survives a restart.

The account is Azurite's well-known development account ``devstoreaccount1``
(https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from demo.stack import free_port

BIN = Path(__file__).resolve().parent / "azurite-emulator" / "node_modules" / ".bin"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SERVICES = ("blob", "queue", "table")


def available() -> str | None:
    """None when Azurite can run here, else why not (for a clear test failure)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (BIN / "azurite-table").exists():
        return f"azurite is not installed under {BIN.parent} (run `make setup-azurite`)"
    return None


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"azurite did not listen on 127.0.0.1:{port} within {timeout:g} s")


class Azurite:
    """The three Azurite services; ``stop_service``/``start_service`` take one down and up again."""

    def __init__(self, location: str):
        self.location = location
        self.ports = {name: free_port() for name in SERVICES}
        self._procs: dict[str, subprocess.Popen] = {}

    def _args(self, name: str) -> list[str]:
        args = [str(BIN / f"azurite-{name}"), "--silent", "--skipApiVersionCheck", "--disableTelemetry",
                f"--{name}Host", "127.0.0.1", f"--{name}Port", str(self.ports[name])]
        if name == "table":
            args += ["--location", os.path.join(self.location, "table")]
        else:
            args += ["--inMemoryPersistence"]
        return args

    def start_service(self, name: str) -> None:
        os.makedirs(os.path.join(self.location, "table"), exist_ok=True)
        proc = subprocess.Popen(self._args(name), cwd=self.location, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self._procs[name] = proc
        _wait_listening(self.ports[name], proc)

    def stop_service(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)  # Azurite saves its database on SIGINT (SIGTERM loses it)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def running(self, name: str) -> bool:
        return name in self._procs

    def start(self) -> Azurite:
        for name in SERVICES:
            self.start_service(name)
        return self

    def stop(self) -> None:
        for name in list(self._procs):
            self.stop_service(name)

    def endpoint(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """The development account's connection string with this instance's three endpoints."""
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.endpoint('blob')};QueueEndpoint={self.endpoint('queue')};"
                f"TableEndpoint={self.endpoint('table')};")
