"""`evidence-gate reconcile` on a terminal: a progress bar on stderr that ends at N/N, drawn on a real
pseudo-terminal (the CLI draws it only when stderr is a TTY); stdout stays plain text."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

BIN = os.path.join(os.path.dirname(sys.executable), "evidence-gate")
BAR = re.compile(r"\r(\S+) \[([#.]+)\] (\d+)/(\d+)")


def read_terminal(fd: int, timeout: float = 120) -> str:
    """Everything written to the terminal until the child closes it."""
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child has exited and the terminal is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


def test_reconcile_draws_a_progress_bar_on_a_terminal_ending_at_n_of_n(kit, registry, tmp_path):
    model = "churn-progress"
    for _ in range(3):
        kit.model_version(model)
    env = dict(os.environ, EVIDENCE_GATE_STORE=str(tmp_path / "s.db"))
    env.pop("MLFLOW_TRACKING_URI", None)
    terminal, child_end = pty.openpty()
    proc = subprocess.Popen([BIN, "reconcile", "--tracking-uri", registry, "--model", model],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=child_end, env=env)
    os.close(child_end)
    try:
        screen = read_terminal(terminal)
    finally:
        os.close(terminal)
    stdout = proc.communicate(timeout=120)[0].decode()

    assert proc.returncode == 0, screen
    frames = [(m.group(1), m.group(2), int(m.group(3)), int(m.group(4))) for m in BAR.finditer(screen)]
    assert frames, repr(screen)
    assert [done for _, _, done, _ in frames] == [1, 2, 3]
    assert {total for _, _, _, total in frames} == {3}
    shown, bar, done, total = frames[-1]
    assert registry.startswith(shown) and set(bar) == {"#"} and done == total == 3
    assert screen.endswith("\n")  # the bar's line is ended before the summary
    assert "Traceback" not in screen
    assert "3 checked" in stdout and "\r" not in stdout  # no bar drawn where stdout is not a terminal
