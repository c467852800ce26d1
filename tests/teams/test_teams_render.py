"""The card as a release manager sees it: Microsoft's `adaptivecards` renderer in headless Chromium.

Needs Debian's `chromium` (`make setup-browser`) and the pinned npm package in
tests/teams/render (`make setup-render`, i.e. `npm ci`); `make test` runs both. Screenshots are
kept in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from demo.render import BUNDLE, RENDER_DIR, render
from shared.sinks.teams import build_card

from .conftest import REPO
from .helpers import make_report, many_findings

ARTIFACTS = REPO / "test-artifacts"

def _unavailable(reason: str):
    """Skip where the browser cannot be had; in CI (`make test` installs it) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (in CI `make test` installs it: see setup-browser / setup-render)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        _unavailable("Debian chromium is not installed: run `make setup-browser` (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def bundle() -> Path:
    if not BUNDLE.exists():
        npm = shutil.which("npm")
        if npm:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=RENDER_DIR,
                capture_output=True,
                timeout=300,
            )
        if not BUNDLE.exists():
            _unavailable("the adaptivecards npm package is not installed: run `make setup-render` (npm ci)")
    return BUNDLE


def test_release_manager_reads_the_card(chromium, bundle, tmp_path, sample_report):
    body = build_card(sample_report)
    result = render(body, chromium, bundle, tmp_path, ARTIFACTS / "teams-card.png")
    assert result["ok"], result["errors"]
    assert result["errors"] == []  # the official renderer understood every element
    text = result["text"]
    (ARTIFACTS / "teams-card.txt").write_text(text, encoding="utf-8")
    assert "FAIL: credit-risk-scorer version 17" in text
    assert "2 errors \u00b7 1 warning \u00b7 1 info \u00b7 1 waived" in text
    assert "credit-risk-scorer" in text and "Production" in text
    assert "Databricks Model Registry webhook" in text
    for rule in ("GOV-002", "EVD-003", "LIN-005", "GOV-004", "EVD-004"):
        assert rule in text
    assert "Fix: Have a second release manager" in text
    assert "WARNING (waived)" in text
    assert "Expired waivers ignored" in text
    assert "Open version in Databricks" in text and "Open run in Databricks" in text
    # Reading order: the verdict first, errors before warnings before info
    assert text.index("FAIL") < text.index("GOV-002") < text.index("LIN-005") < text.index("GOV-004")


def test_repo_sample_report_renders(chromium, bundle, tmp_path, repo_fixture_report):
    result = render(build_card(repo_fixture_report), chromium, bundle, tmp_path)
    assert result["ok"] and result["errors"] == []
    for expected in ("FAIL: churn-model version 4", "champion", "GOV-001", "SEC-001", "Open run in MLflow UI"):
        assert expected in result["text"]


def test_sixty_findings_card_renders(chromium, bundle, tmp_path):
    body = build_card(make_report(findings=many_findings(60, text_len=2000)))
    result = render(body, chromium, bundle, tmp_path, ARTIFACTS / "teams-card-60-findings.png")
    assert result["ok"] and result["errors"] == []
    text = result["text"]
    assert "FAIL: credit-risk-scorer version 17" in text
    assert "Findings (60)" in text
    assert "more findings" in text
    assert "LIN-001" in text and "GOV-001" in text
