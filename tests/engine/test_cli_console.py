"""The CLI's console shows Evidence Gate's log lines, not the telemetry records meant for Azure Monitor."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_telemetry_records_stay_off_the_console():
    code = ("import logging; from shared import cli, telemetry; cli.main(['rules', '--format', 'json']);"
            " telemetry.record_reconcile('http://127.0.0.1:5000', 1, None, None);"
            " logging.getLogger('evidence_gate.serve').warning('a serve line')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "evidence-gate reconcile" not in done.stderr
    assert "evidence-gate: a serve line" in done.stderr
