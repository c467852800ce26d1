"""Render a Teams card the way a release manager sees it: Microsoft's official `adaptivecards`
renderer (npm, pinned in tests/teams/render) in headless Debian Chromium. Used by the rendering
test and by `make demo` (cards saved as PNG).

TextBlock and Fact texts are Markdown. The renderer bundles no Markdown processor: it uses
markdown-it when the page has loaded it (``window.markdownit``) and shows the raw text otherwise.
Teams does process Markdown, so markdown-it (pinned next to adaptivecards) is loaded whenever it
is installed; ``render`` reports whether it was (``markdown``)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RENDER_DIR = ROOT / "tests" / "teams" / "render"
BUNDLE = RENDER_DIR / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
CARD_WIDTH = 560


class RenderError(RuntimeError):
    """Chromium did not produce a rendering."""


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
{markdown_script}<script src="{bundle}"></script>
</head><body>
<div id="card"></div>
<pre id="result" style="display:none"></pre>
<script type="application/json" id="payload">{payload}</script>
<script type="application/json" id="hostconfig">{host_config}</script>
<script>
(function () {{
  var out = {{ok: false, errors: [], text: "", html: "", height: 0, markdown: !!window.markdownit}};
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
    out.html = host.innerHTML;
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


def markdown_it_for(bundle: Path) -> Path:
    """markdown-it's browser build in the same node_modules as the adaptivecards ``bundle``."""
    return bundle.parents[2] / "markdown-it" / "dist" / "markdown-it.min.js"


def _page(body: dict, bundle: Path) -> str:
    def inline(value) -> str:
        return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")

    markdown = markdown_it_for(bundle)
    return PAGE.format(
        width=CARD_WIDTH,
        bundle=bundle.as_uri(),
        markdown_script=f'<script src="{markdown.as_uri()}"></script>\n' if markdown.exists() else "",
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
    """Renders the card; returns {ok, errors, text, html, height, markdown}; optionally writes a PNG.

    ``text`` is what a reader sees (innerText), ``html`` the rendered elements, ``markdown`` whether
    markdown-it was loaded (texts were rendered as Markdown) or not (shown raw)."""
    page = tmp_path / "card.html"
    page.write_text(_page(body, bundle), encoding="utf-8")
    done = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="result"[^>]*>(.*?)</pre>', done.stdout, re.S)
    if not match:
        raise RenderError(f"no render result; chromium exit {done.returncode}: {done.stderr[-2000:]}")
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
        if not screenshot.exists() or screenshot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise RenderError(f"no screenshot: {shot.stderr[-2000:]}")
    return result



def chromium_path() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def render_card_png(card_json: Path, png: Path) -> Path | None:
    """The card saved at ``card_json`` as a PNG; None when Chromium or the renderer is not installed."""
    chromium = chromium_path()
    if chromium is None or not BUNDLE.exists():
        return None
    with tempfile.TemporaryDirectory(prefix="evidence-gate-card-") as tmp:
        try:
            render(json.loads(card_json.read_text()), chromium, BUNDLE, Path(tmp), png)
        except (RenderError, subprocess.SubprocessError, OSError):
            return None
    return png if png.exists() else None
