"""A webhook receiver on 127.0.0.1, the dashboard as a real process, and secrets to look for."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.sim import clean_env, free_port

# Set in the environment of every process under test; none may ever show up in what they output.
SECRETS = {
    "KIS_APP_KEY": "PSappKEYtopSECRETvalue0123456789abcd",
    "KIS_APP_SECRET": "appSECRET-never-print-me-4711",
    "KIS_ACCOUNT": "87654321-09",
    "KIS_HTS_ID": "htsSECRETuser",
}
WEBHOOK_PATH = "/services/T0000/B0000/webhookSECRETpath"


def leaked(text: str) -> list[str]:
    """Which secret values (or recognisable parts of them) appear in ``text``."""
    needles = [*SECRETS.values(), "87654321", "8765432109", "webhookSECRETpath"]
    return [n for n in needles if n in text]


class Receiver:
    """A Slack-compatible webhook: records each JSON body; answers ``status`` (200 unless told)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.paths.append(self.path)
                code = outer.status
                if code == 200:
                    outer.posts.append(json.loads(body))
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        return [str(p["text"]) for p in self.posts]

    def wait_for(self, needle: str, within: float = 10.0) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for t in self.texts():
                if needle in t:
                    return t
            time.sleep(0.05)
        raise AssertionError(f"no alert mentioning {needle!r}; got {self.texts()}")


class Dashboard:
    """``stock-manager run dashboard`` on a free port."""

    def __init__(self, database_url: str, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stock_manager", "run", "dashboard"],
            env=clean_env(DATABASE_URL=database_url, SM_DASHBOARD_ADDR=f"127.0.0.1:{self.port}",
                          KIS_REST_URL="http://127.0.0.1:9", SM_HEARTBEAT_S="1", **SECRETS, **env),
            stdout=self._log, stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"dashboard exited {self.proc.returncode}: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("dashboard did not answer /healthz")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
