"""A headless Chromium asked about a page it has loaded, over the DevTools protocol.

``--dump-dom`` shows what a page wrote, not how it is drawn; how a name is drawn (glyphs or the
font's empty boxes) can only be measured inside the page, and a page cannot be scripted from
outside its origin.  So the browser is started with a DevTools port and asked directly.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect


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
    with tempfile.TemporaryDirectory(prefix="sm-cdp-") as tmp:
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
