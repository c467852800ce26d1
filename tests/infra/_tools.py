"""Offline IaC tooling for the infra tests: pycep-parser and checkov live in `.venv-tools`
(installed by `make setup-tools`, pinned in requirements-tools.txt) and are run by path."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
TOOLS_BIN = REPO / ".venv-tools" / "bin"
TOOLS_PYTHON = TOOLS_BIN / "python"
CHECKOV = TOOLS_BIN / "checkov"

_MISSING = "{tool} is missing: run `make setup-tools` (installs requirements-tools.txt into .venv-tools)"

# checkov evaluates some Bicep expressions differently depending on Python's hash seed: fix it.
_ENV = {**os.environ, "PYTHONHASHSEED": "0", "LOG_LEVEL": "ERROR", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}

_PARSE = """
import json, sys
from pathlib import Path
from pycep import BicepParser
out = {}
for p in sys.argv[1:]:
    try:
        out[p] = {"ok": True, "tree": BicepParser().parse(file_path=Path(p))}
    except Exception as exc:  # reported per file by the test
        out[p] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out, default=str))
"""


def require(path: Path, tool: str) -> None:
    if not path.exists():
        pytest.fail(_MISSING.format(tool=tool), pytrace=False)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse_all() -> dict[str, dict]:
    """Every .bicep file under infra/ parsed by pycep-parser: {relative path: {ok, tree|error}}."""
    require(TOOLS_PYTHON, "the tools venv (.venv-tools/bin/python)")
    files = [str(p) for p in bicep_files()]
    proc = subprocess.run([str(TOOLS_PYTHON), "-c", _PARSE, *files], capture_output=True, text=True, env=_ENV, check=False)
    assert proc.returncode == 0, f"pycep-parser run failed:\n{proc.stderr[-3000:]}"
    raw = json.loads(proc.stdout)
    return {str(Path(k).relative_to(REPO)): v for k, v in raw.items()}


def tree(relative: str) -> dict:
    parsed = parse_all()[relative]
    assert parsed["ok"], f"{relative} does not parse: {parsed.get('error')}"
    return parsed["tree"]


def run_checkov(directory: Path) -> dict:
    """checkov's JSON report for the Bicep files under `directory` (offline)."""
    require(CHECKOV, "checkov (.venv-tools/bin/checkov)")
    proc = subprocess.run(
        [str(CHECKOV), "--directory", str(directory), "--framework", "bicep", "--skip-download", "--output", "json", "--compact"],
        capture_output=True,
        text=True,
        env=_ENV,
        check=False,
        cwd=str(REPO),
    )
    # exit 1 = failed checks (asserted by the caller); anything else is a checkov error.
    assert proc.returncode in (0, 1), f"checkov exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one report per framework; only bicep was asked for
        (report,) = [r for r in report if r.get("check_type") == "bicep"]
    return report


def unquote(key: str) -> str:
    """pycep keeps the quotes of quoted object keys ('a-b': ...)."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def bicep_string(value: str) -> str:
    """A Bicep string literal as pycep returns it, with Bicep's escapes resolved."""
    return value.replace("\\'", "'").replace("\\\\", "\\")
