"""The image's install step outside Docker: the files the Dockerfile copies, ``pip install .`` from them
in a fresh venv, then ``stock-manager up`` from an empty folder until every service heartbeats
(issue #16's acceptance, issue #15 point 8).

CI cannot run Docker, so the build context is rebuilt here: every ``COPY`` of the Dockerfile is
repeated into a temporary folder, with the files ``.dockerignore`` keeps out left out as Docker
would, and a source the context lacks is an error as it is for ``docker build``.  A file the
package needs but the Dockerfile forgets to copy therefore fails here, not in the first image.

``python scripts/wheel_smoke.py`` prints what it did and exits 0, or 1 saying what failed.  It needs
network access to the package index for the build backend and the dependencies, as any install
does.  CI runs it after the tests.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"pricesync", "strategy", "execution"}


class ContextError(Exception):
    pass


def _pattern(glob: str) -> re.Pattern[str]:
    """A ``.dockerignore`` line as a regex: ``*`` and ``?`` stay within one path element, ``**`` spans any."""
    out = ""
    for part in re.split(r"(\*\*/?|\*|\?)", glob.strip("/")):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(out)


def ignore_rules(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as (excludes, pattern) in file order; the last rule that matches decides."""
    path = context / ".dockerignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    rules = []
    for line in (ln.strip() for ln in lines):
        if line and not line.startswith("#"):
            rules.append((not line.startswith("!"), _pattern(line.lstrip("!"))))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: a path is out when the last pattern matching it or one of its parents excludes."""
    parts = rel.split("/")
    verdict = False
    for excludes, pat in rules:
        if any(pat.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            verdict = excludes
    return verdict


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """The (sources, destination) of each ``COPY`` from the build context (not ``--from`` a stage)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() != "COPY":
            continue
        flags = [w for w in words[1:] if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        out.append((args[:-1], args[-1]))
    return out


def build_context(context: Path, dest: Path) -> list[str]:
    """Repeat the Dockerfile's ``COPY`` steps from ``context`` into ``dest``; the files copied."""
    rules = ignore_rules(context)
    copied: list[str] = []
    for sources, target in copies(context / "Dockerfile"):
        into_dir = target.endswith("/") or len(sources) > 1
        for src in sources:
            origin = context / src
            if not origin.exists() or ignored(src.strip("/"), rules):
                raise ContextError(f"the Dockerfile copies {src}, which the build context lacks")
            base = dest / target.lstrip("/")
            to = base / origin.name if into_dir else base
            files = [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
            for f in files:
                rel = f.relative_to(context).as_posix()
                if ignored(rel, rules):
                    continue
                out = to if f == origin else to / f.relative_to(origin)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out)
                copied.append(rel)
    return copied


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(cmd: list[str], **kw: object) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]  # noqa: S603


def beating(url: str) -> set[str]:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            rows = conn.execute("SELECT service FROM ops.heartbeats WHERE status = 'RUNNING'"
                                " AND beat_ts > clock_timestamp() - interval '15 seconds'").fetchall()
    except psycopg.Error:
        return set()
    return {r[0] for r in rows}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sm-wheel-") as tmp_dir:
        tmp = Path(tmp_dir)
        app = tmp / "app"  # the image's WORKDIR
        try:
            copied = build_context(ROOT, app)
        except ContextError as e:
            print(f"FAIL: {e}", file=sys.stderr)
            return 1
        print(f"build context: {len(copied)} files as the Dockerfile copies them "
              f"({', '.join(sorted({c.split('/')[0] for c in copied}))})", flush=True)
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        bindir = venv / ("Scripts" if os.name == "nt" else "bin")
        print(f"$ cd {app} && pip install .", flush=True)
        run([str(bindir / "python"), "-m", "pip", "install", "--quiet", "."], cwd=app)
        names = subprocess.run([str(bindir / "python"), "-c",  # noqa: S603
                                "import importlib.util as u; print([n for n in ('services', 'shared', 'db')"
                                " if u.find_spec(n)])"], check=True, capture_output=True, text=True).stdout.strip()
        if names != "[]":
            print(f"FAIL: the wheel installs top-level modules {names}", file=sys.stderr)
            return 1
        work = tmp / "empty"
        work.mkdir()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL", "VIRTUAL_ENV"))}
        env.update(KIS_REST_URL=f"http://127.0.0.1:{port}", KIS_WS_URL=f"ws://127.0.0.1:{port}",
                   SM_DASHBOARD_ADDR=f"127.0.0.1:{free_port()}", SM_HEARTBEAT_S="1")
        print(f"$ cd {work} && stock-manager up --no-status", flush=True)
        proc = subprocess.Popen([str(bindir / "stock-manager"), "up", "--no-status"], cwd=work, env=env,  # noqa: S603
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"host={work / '.stock-manager' / 'pgdata'} dbname=stock_manager user=postgres"
        started = time.monotonic()
        try:
            while time.monotonic() - started < 180:
                if proc.poll() is not None:
                    print(f"FAIL: up exited with {proc.returncode}", file=sys.stderr)
                    return 1
                if beating(url) >= SERVICES:
                    print(f"every service heartbeats after {time.monotonic() - started:.1f} s: "
                          f"{', '.join(sorted(SERVICES))}")
                    break
                time.sleep(0.5)
            else:
                print(f"FAIL: after 180 s only {sorted(beating(url))} heartbeat", file=sys.stderr)
                return 1
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -9
        if code != 0:
            print(f"FAIL: up did not stop cleanly on Ctrl-C (exit {code})", file=sys.stderr)
            return 1
        print("install smoke test passed: pip install . from the image's files into a fresh venv, "
              "up from an empty folder")
        return 0


if __name__ == "__main__":
    sys.exit(main())
