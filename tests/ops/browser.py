"""Headless Chromium for the browser tests (the dashboard's, the day report's): one run that dumps
the DOM or takes a screenshot (``headless``), a page asked a question over the DevTools protocol
(``evaluate``), the glyph-width check, and the fixtures that find the browser (registered for every
test by tests/conftest.py).

``--dump-dom`` shows what a page wrote, not how it is drawn; how a name is drawn (glyphs or the
font's empty boxes) can only be measured inside the page, and a page cannot be scripted from
outside its origin.  So for that the browser is started with a DevTools port and asked directly.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# CI (CI=true, as .ci/run sets it) must not pass without the browser checks: there a missing chromium
# or CJK font fails the test; elsewhere the test skips and says what to install.
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")

# The glyph-width check: a missing glyph is drawn as the font's .notdef box, the same width for every
# character; private-use code points get that box in every font, so a character measuring like them
# is a box.  Measured on a canvas of the page being checked, in the font an element computes.
GLYPHS_JS = """
function glyphs(doc, font, text) {
  const ctx = doc.createElement("canvas").getContext("2d");
  ctx.font = font;
  const w = (t) => ctx.measureText(t).width;
  const widths = [...text].map(w);
  const boxes = ["\\uE000", "\\uE001", "\\uE002"].map(w);
  const boxed = widths.filter((x) => boxes.some((b) => Math.abs(x - b) < 0.01)).length;
  return "boxed=" + boxed + " text=" + text + " widths=" + widths.join(",");
}
"""


def has_cjk_font() -> bool:
    """Whether fontconfig (what Chromium asks on Linux) knows a Korean font; True where it cannot be asked."""
    if shutil.which("fc-list") is None:
        return True  # not fontconfig's platform: the glyph check itself decides
    out = subprocess.run(["fc-list", ":lang=ko", "family"], capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())


def _require(*missing: str | None) -> None:
    wanting = [m for m in missing if m]
    if not wanting:
        return
    what = " and ".join(wanting)
    if IN_CI:
        pytest.fail(f"CI=true but {what}: the headless-browser checks must run in CI")
    pytest.skip(f"{what}: no headless-browser check")


@pytest.fixture
def chromium() -> str:
    _require(None if CHROMIUM else "chromium is not installed (apt-get install chromium)")
    assert CHROMIUM is not None
    return CHROMIUM


@pytest.fixture
def chromium_with_cjk(chromium: str) -> str:
    _require(None if has_cjk_font() else "no Korean font is installed (apt-get install fonts-noto-cjk)")
    return chromium


def headless(url: str, *args: str, size: str = "1280,1200", budget_ms: int = 4000) -> subprocess.CompletedProcess[str]:
    """One run on a throwaway profile (``--dump-dom``, ``--screenshot=...``); the page gets ``budget_ms``
    of virtual time to load and settle."""
    assert CHROMIUM is not None
    # chromium may still be writing its profile as it exits: a leftover file must not fail the test
    with tempfile.TemporaryDirectory(prefix="sm-chromium-", ignore_cleanup_errors=True) as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={profile}", f"--window-size={size}", f"--virtual-time-budget={budget_ms}", *args, url],
            capture_output=True, text=True, timeout=60, check=False)


class BrowserError(Exception):
    pass


def _devtools_url(profile: Path, proc: subprocess.Popen[bytes], within: float) -> str:
    """Chromium writes its DevTools port and browser path into the profile once it listens."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrowserError(f"chromium exited with {proc.returncode}: "
                               f"{(profile / 'stderr.log').read_text(errors='replace')[-2000:]}")
        lines = active.read_text().split() if active.exists() else []
        if len(lines) == 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise BrowserError(f"chromium opened no DevTools port within {within} s")


def evaluate(chromium: str, url: str, ready: str, expression: str, *, size: str = "1280,1200",
             within: float = 30.0) -> Any:
    """Open ``url``, wait until the script ``ready`` is truthy there, then return ``expression``'s value.

    ``ready`` is asked again while the page navigates (its context may not exist yet); ``expression``
    may be a promise, and its value comes back as JSON.
    """
    with tempfile.TemporaryDirectory(prefix="sm-cdp-", ignore_cleanup_errors=True) as tmp:
        profile = Path(tmp)
        with (profile / "stderr.log").open("wb") as log:
            proc = subprocess.Popen(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", f"--window-size={size}",
                 "--remote-debugging-port=0", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=log)
        try:
            with connect(_devtools_url(profile, proc, within), max_size=None, open_timeout=within) as ws:
                ids = itertools.count(1)

                def call(method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
                    n = next(ids)
                    ws.send(json.dumps({"id": n, "method": method, "params": params,
                                        **({"sessionId": session} if session else {})}))
                    while True:  # events (targets attached, ...) come in between; only the answer counts
                        reply = json.loads(ws.recv(timeout=within))
                        if reply.get("id") == n:
                            if "error" in reply:
                                raise BrowserError(f"{method}: {reply['error']}")
                            return dict(reply["result"])

                def value(script: str, session: str) -> Any:
                    out = call("Runtime.evaluate", {"expression": script, "awaitPromise": True,
                                                    "returnByValue": True}, session)
                    if "exceptionDetails" in out:
                        raise BrowserError(f"{script[:80]!r} raised: {out['exceptionDetails']}")
                    return out["result"].get("value")

                target = call("Target.createTarget", {"url": url})["targetId"]
                session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
                deadline = time.monotonic() + within
                while True:
                    try:
                        if value(ready, session):
                            break
                    except BrowserError:
                        pass  # the context went away with a navigation: ask the new one
                    if time.monotonic() > deadline:
                        raise BrowserError(f"{url} was not ready ({ready}) within {within} s")
                    time.sleep(0.1)
                return value(expression, session)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
