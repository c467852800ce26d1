"""`evidence-gate check` as a user runs it: formats, exit codes, one-line errors, no secret echoed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shared.report import validate
from tests.engine.conftest import AZURE_CONN

BIN = os.path.join(os.path.dirname(sys.executable), "evidence-gate")


def run_cli(*args, store, env=None):
    full_env = dict(os.environ, EVIDENCE_GATE_STORE=str(store), **(env or {}))
    full_env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_table_for_people(scenarios, registry, tmp_path):
    out = run_cli("check", "--tracking-uri", registry, "--model", "churn-nodata", "--version",
                  scenarios["no_dataset"].version, store=tmp_path / "s.db")
    assert out.returncode == 0, out.stderr
    assert "WARN" in out.stdout and "LIN-005" in out.stdout and "fix: Log the training data" in out.stdout
    assert "\033[" not in out.stdout  # no colour when not a terminal


def test_json_validates_against_the_shipped_schema_and_exit_1_on_fail(scenarios, registry, tmp_path):
    out = run_cli("check", "--tracking-uri", registry, "--model", "churn-failed", "--version",
                  scenarios["failed_run"].version, "--format", "json", store=tmp_path / "s.db")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    validate(report)
    assert report["verdict"] == "fail" and report["trigger"]["source"] == "cli"


def test_sarif_2_1_0(scenarios, registry, tmp_path):
    out = run_cli("check", "--tracking-uri", registry, "--model", "churn-cred-file", "--version",
                  scenarios["cred_file"].version, "--format", "sarif", store=tmp_path / "s.db")
    assert out.returncode == 1
    sarif = json.loads(out.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == 25 and {r["id"] for r in rules} >= {"SEC-002", "LIN-001"}
    result = next(r for r in run["results"] if r["ruleId"] == "SEC-002")
    assert result["level"] == "error"
    assert rules[result["ruleIndex"]]["id"] == "SEC-002"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("models/churn-cred-file/")


def test_promotion_from_the_cli(scenarios, registry, tmp_path):
    out = run_cli("check", "--tracking-uri", registry, "--model", "churn-promo", "--version",
                  scenarios["unapproved"].version, "--alias", "champion", "--format", "json", store=tmp_path / "s.db")
    report = json.loads(out.stdout)
    assert out.returncode == 1
    assert {"GOV-001", "GOV-006"} <= {f["rule_id"] for f in report["findings"]}


@pytest.mark.parametrize("args, code, text", [
    (["--model", "no-such-model", "--version", "1"], 2, "does not exist"),
    (["--model", "churn-clean", "--version", "1", "--policy", "/nonexistent/policy.yaml"], 2, "policy file not found"),
    (["--model", "churn-clean", "--version", "1", "--format", "xml"], 2, "invalid choice"),
    (["--model", "churn-clean"], 2, "required"),
])
def test_bad_input_is_one_plain_line_and_exit_2(args, code, text, registry, tmp_path):
    out = run_cli("check", "--tracking-uri", registry, *args, store=tmp_path / "s.db")
    assert out.returncode == code
    assert text in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_bad_uri_is_exit_2(tmp_path):
    out = run_cli("check", "--tracking-uri", "ftp://nowhere", "--model", "m", "--version", "1", store=tmp_path / "s.db")
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_no_registry_configured(tmp_path):
    out = run_cli("check", "--model", "m", "--version", "1", store=tmp_path / "s.db")
    assert out.returncode == 2 and "MLFLOW_TRACKING_URI" in out.stderr


def test_unreachable_registry_is_exit_3(tmp_path):
    from demo.stack import free_port

    out = run_cli("check", "--tracking-uri", f"http://127.0.0.1:{free_port()}", "--model", "m", "--version", "1",
                  store=tmp_path / "s.db", env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert out.returncode == 3
    assert "unavailable" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_credential_in_params_is_never_echoed(scenarios, registry, tmp_path):
    secret_part = AZURE_CONN.split("AccountKey=")[1].split(";")[0]
    outputs = []
    for fmt in ("table", "json", "sarif"):
        out = run_cli("check", "--tracking-uri", registry, "--model", "churn-cred", "--version",
                      scenarios["cred_param"].version, "--format", fmt, store=tmp_path / "s.db")
        assert out.returncode == 1
        outputs += [out.stdout, out.stderr]
    blob = "\n".join(outputs) + (tmp_path / "s.db").read_bytes().decode("latin-1")
    assert "run.params.storage" in outputs[0]
    assert secret_part not in blob and secret_part[:16] not in blob


def test_a_check_that_fails_before_checking_leaves_no_store_behind(tmp_path):
    from demo.stack import free_port

    env = {k: v for k, v in os.environ.items() if k not in ("EVIDENCE_GATE_STORE", "MLFLOW_TRACKING_URI")}
    out = subprocess.run([BIN, "check", "--tracking-uri", f"http://127.0.0.1:{free_port()}", "--model", "m",
                          "--version", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert out.returncode == 3 and not (tmp_path / ".evidence-gate").exists()


def test_a_slow_registry_is_reported_while_the_cli_waits(scenarios, registry, proxy, tmp_path):
    from tests.support.proxy import Fault

    proxy.faults.append(Fault(delay=6.5))  # the first request answers after 6.5 s
    out = run_cli("check", "--tracking-uri", registry, "--model", "churn-clean", "--version",
                  scenarios["clean"].version, store=tmp_path / "s.db")
    assert out.returncode == 0
    assert "still waiting for the registry (5 s; gives up after 30 s)" in out.stderr
