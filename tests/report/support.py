"""What the report's browser tests ask a loaded report page, and look for in its screenshot."""

from __future__ import annotations

from typing import Any

from tests.ops.browser import GLYPHS_JS, evaluate
from tests.ops.png import decode

# Asked inside the loaded page (DevTools evaluates past the page's own CSP): each image's natural
# size, and the glyph check on the Korean name of each traded symbol in the font its cell computes.
PROBE = f"""(() => {{ {GLYPHS_JS}
  const images = [...document.images].map((i) => [i.getAttribute("src"), i.complete, i.naturalWidth]);
  const names = [...document.querySelectorAll("tr.trip .name")].map(
    (cell) => glyphs(document, getComputedStyle(cell).font, cell.textContent.replace(/[^\\uAC00-\\uD7A3]/g, "")));
  return {{images, names}};
}})()"""
# the report itself (not the blank page a new target starts on), with everything it references loaded
LOADED = "!!document.getElementById('summary') && document.readyState === 'complete'"


def probe(chromium: str, url: str) -> dict[str, Any]:
    result = evaluate(chromium, url, ready=LOADED, expression=PROBE, size="1280,1400")
    assert isinstance(result, dict)
    return result


def charts_drawn(png: bytes) -> None:
    """The charts' own colours in a screenshot: rises and gains red, falls and the drawdown blue."""
    colours = decode(png).colours()
    assert len(colours) > 300, f"only {len(colours)} colours: blank page?"
    assert any(r > 190 and g < 90 and b < 100 for (r, g, b) in colours), "no red from the charts"
    assert any(b > 190 and r < 80 and g < 150 for (r, g, b) in colours), "no blue from the charts"
