"""The card as a release manager sees it: Microsoft's `adaptivecards` renderer in headless Chromium.

Needs Debian's `chromium` (`make setup-browser`) and the pinned npm packages in
tests/teams/render (`make setup-render`, i.e. `npm ci`): adaptivecards, and markdown-it, which the
renderer uses for TextBlock and Fact texts as Teams renders them as Markdown. `make test` runs
both. Screenshots are kept in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from demo.render import BUNDLE, RENDER_DIR, markdown_it_for, render
from shared.sinks.teams import build_card

from .conftest import REPO
from .helpers import (
    MARKDOWN_ALIAS,
    MARKDOWN_MESSAGE,
    MARKDOWN_MODEL,
    MARKDOWN_REASON,
    MARKDOWN_REMEDY,
    MARKDOWN_TITLE,
    make_report,
    many_findings,
    markdown_report,
)

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
    if not BUNDLE.exists() or not markdown_it_for(BUNDLE).exists():
        npm = shutil.which("npm")
        if npm:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=RENDER_DIR,
                capture_output=True,
                timeout=300,
            )
        if not BUNDLE.exists() or not markdown_it_for(BUNDLE).exists():
            _unavailable("the adaptivecards / markdown-it npm packages are not installed: run `make setup-render` (npm ci)")
    return BUNDLE


def test_release_manager_reads_the_card(chromium, bundle, tmp_path, sample_report):
    body = build_card(sample_report)
    result = render(body, chromium, bundle, tmp_path, ARTIFACTS / "teams-card.png")
    assert result["ok"], result["errors"]
    assert result["errors"] == []  # the official renderer understood every element
    assert result["markdown"]  # texts rendered as Markdown, as Teams does
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


def test_repo_sample_report_renders(chromium, bundle, tmp_path, report):
    result = render(build_card(report), chromium, bundle, tmp_path)
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


def test_report_texts_render_literally_not_as_markdown(chromium, bundle, tmp_path):
    """Model names, finding texts and waiver reasons that look like Markdown are shown as written:
    no emphasis, link, image or code from them, every character visible, no escape backslash."""
    body = build_card(markdown_report())
    # A control the card did not write: proves the page does render Markdown (bold and a link).
    body["attachments"][0]["content"]["body"].append(
        {"type": "TextBlock", "text": "**control** [control link](https://example.com/)", "wrap": True}
    )
    result = render(body, chromium, bundle, tmp_path, ARTIFACTS / "teams-card-markdown.png")
    assert result["ok"] and result["errors"] == [] and result["markdown"]
    html = result["html"]
    assert re.findall(r"<(em|strong|a|code|img|s|ul|ol|li|h[1-6]|blockquote|pre|hr)\b", html) == ["strong", "a"]
    assert re.findall(r'href="([^"]*)"', html) == ["https://example.com/"]
    text = result["text"]
    for literal in (
        f"FAIL: {MARKDOWN_MODEL} version 17",
        MARKDOWN_MODEL,
        MARKDOWN_ALIAS,
        MARKDOWN_TITLE,
        MARKDOWN_MESSAGE,
        f"Fix: {MARKDOWN_REMEDY}",
        f"Waived: {MARKDOWN_REASON}, approved by bob_smith",
        "- not a list",
        "1. not a numbered list",
        "Fix: # not a heading",
        "LIN-004 for credit_*",
        "model_version.transitioned_to_production",
    ):
        assert literal in text, literal
    assert "\\" not in text


_MARKDOWN_IT = """
const md = require(process.argv[1])();
const texts = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(texts.map((t) => md.render(t))));
"""


def test_escaped_texts_are_literal_for_markdown_it(bundle):
    """5,000 texts made of Markdown's characters, escaped by the card: markdown-it (the renderer's
    Markdown, CommonMark) renders each as one paragraph holding exactly the text, nothing else."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    from shared.sinks.teams import _md

    rnd = random.Random(7)
    pieces = list("*_[]()<>`~\\&#;!-+.=:|{}@/ \n\tab1") + [
        "http://x", "<https://e.example>", "<a@b.c>", "&amp;", "&#42;", "{{DATE(", "1. ", "- ", "***", "\u00a0",
    ]
    texts = []
    while len(texts) < 5000:
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 16)))
        if text.split():
            texts.append(text)
    module = str(markdown_it_for(bundle).parents[1])
    done = subprocess.run(
        [node, "-e", _MARKDOWN_IT, module],
        input=json.dumps([_md(t) for t in texts]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rendered = json.loads(done.stdout)
    wrong = [
        (text, _md(text), out)
        for text, out in zip(texts, rendered, strict=True)
        if out != "<p>" + html.escape(" ".join(text.split())).replace("&#x27;", "'") + "</p>\n"
    ]
    assert not wrong, wrong[:10]
