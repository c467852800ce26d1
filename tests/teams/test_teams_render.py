"""The card as a release manager sees it: Microsoft's `adaptivecards` renderer in headless Chromium.

Needs Debian's `chromium` (`make setup-browser`) and the pinned npm package in
tests/teams/render (`make setup-render`, i.e. `npm ci`); `make test` runs both. Screenshots are
kept in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.sinks.teams import build_card

from .conftest import REPO
from .helpers import make_report, many_findings

RENDER_DIR = Path(__file__).resolve().parent / "render"
BUNDLE = RENDER_DIR / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
ARTIFACTS = REPO / "test-artifacts"
CARD_WIDTH = 560

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--virtual-time-budget=5000",
]

# Close to the Teams light theme (colours of the Teams host config), fonts available on Debian.
HOST_CONFIG = {
    "fontFamily": "'Segoe UI', 'Liberation Sans', 'DejaVu Sans', sans-serif",
    "supportsInteractivity": True,
    "spacing": {"small": 4, "default": 8, "medium": 12, "large": 16, "extraLarge": 24, "padding": 16},
    "separator": {"lineThickness": 1, "lineColor": "#E0E0E0"},
    "fontSizes": {"small": 12, "default": 14, "medium": 16, "large": 20, "extraLarge": 24},
    "fontWeights": {"lighter": 300, "default": 400, "bolder": 600},
    "containerStyles": {
        "default": {
            "backgroundColor": "#FFFFFF",
            "foregroundColors": {
                "default": {"default": "#242424", "subtle": "#616161"},
                "accent": {"default": "#5B5FC7", "subtle": "#5B5FC7"},
                "attention": {"default": "#C4314B", "subtle": "#C4314B"},
                "good": {"default": "#237B4B", "subtle": "#237B4B"},
                "warning": {"default": "#835C00", "subtle": "#835C00"},
            },
        },
        "emphasis": {"backgroundColor": "#F5F5F5"},
        "attention": {"backgroundColor": "#FCF4F6"},
        "warning": {"backgroundColor": "#FBF6D9"},
        "good": {"backgroundColor": "#E7F2DA"},
    },
    "factSet": {
        "title": {"weight": "bolder", "wrap": True, "maxWidth": 150},
        "value": {"wrap": True},
        "spacing": 12,
    },
    "actions": {"maxActions": 6, "buttonSpacing": 8, "actionsOrientation": "horizontal"},
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Evidence Gate card</title>
<style>
  body {{ margin: 0; background: #EBEBEB; }}
  #card {{ width: {width}px; margin: 16px; background: #FFFFFF; border-radius: 6px; overflow: hidden;
           box-shadow: 0 1px 3px rgba(0,0,0,.2); }}
  .ac-pushButton {{ font-family: 'Liberation Sans', sans-serif; padding: 6px 12px; border: 1px solid #D1D1D1;
                    border-radius: 4px; background: #FFFFFF; color: #242424; font-weight: 600; }}
</style>
<script src="{bundle}"></script>
</head><body>
<div id="card"></div>
<pre id="result" style="display:none"></pre>
<script type="application/json" id="payload">{payload}</script>
<script type="application/json" id="hostconfig">{host_config}</script>
<script>
(function () {{
  var out = {{ok: false, errors: [], text: "", height: 0}};
  try {{
    var payload = JSON.parse(document.getElementById("payload").textContent);
    var content = payload.attachments[0].content;
    var card = new AdaptiveCards.AdaptiveCard();
    card.hostConfig = new AdaptiveCards.HostConfig(
      JSON.parse(document.getElementById("hostconfig").textContent));
    var context = new AdaptiveCards.SerializationContext();
    card.parse(content, context);
    for (var i = 0; i < context.eventCount; i++) {{
      out.errors.push("parse: " + context.getEventAt(i).message);
    }}
    var validation = card.validateProperties();
    for (var j = 0; j < validation.validationEvents.length; j++) {{
      out.errors.push("validate: " + validation.validationEvents[j].message);
    }}
    var element = card.render();
    var host = document.getElementById("card");
    host.appendChild(element);
    out.text = host.innerText;
    out.height = Math.ceil(host.getBoundingClientRect().height);
    out.ok = true;
  }} catch (e) {{
    out.errors.push("exception: " + e + " " + (e && e.stack));
  }}
  document.getElementById("result").textContent = JSON.stringify(out);
}})();
</script>
</body></html>
"""


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


def _page(body: dict, bundle: Path) -> str:
    def inline(value) -> str:
        return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")

    return PAGE.format(
        width=CARD_WIDTH,
        bundle=bundle.as_uri(),
        payload=inline(body),
        host_config=inline(HOST_CONFIG),
    )


def _chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def render(body: dict, chromium: str, bundle: Path, tmp_path: Path, screenshot: Path | None = None) -> dict:
    """Renders the card; returns {ok, errors, text, height}; optionally writes a PNG screenshot."""
    page = tmp_path / "card.html"
    page.write_text(_page(body, bundle), encoding="utf-8")
    done = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="result"[^>]*>(.*?)</pre>', done.stdout, re.S)
    assert match, f"no render result; chromium exit {done.returncode}: {done.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    if screenshot is not None and result.get("ok"):
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        if screenshot.exists():
            screenshot.unlink()
        height = result["height"] + 32
        shot = _chromium(
            chromium,
            tmp_path,
            f"--screenshot={screenshot}",
            f"--window-size={CARD_WIDTH + 32},{height}",
            page.as_uri(),
        )
        assert screenshot.exists() and screenshot.stat().st_size > 1000, shot.stderr[-2000:]
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return result


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
