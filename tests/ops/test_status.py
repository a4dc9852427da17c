"""``stock-manager status`` (and ``--json``, ``healthcheck``) on a seeded day, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.ops import seed
from tests.ops.support import SECRETS, leaked
from tests.support.pg import TestDb
from tests.support.sim import clean_env


def _cli(db: TestDb, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stock_manager", *args], capture_output=True, text=True,
                          env=clean_env(DATABASE_URL=db.admin_url, **SECRETS), timeout=60, check=False)


def test_status_is_one_screen_of_the_day(seeded_module: TestDb) -> None:
    seed.touch_heartbeats(seeded_module.admin_url)
    out = _cli(seeded_module, "status")
    assert out.returncode == 0, out.stderr
    screen = out.stdout
    assert len(screen.splitlines()) <= 45
    for needle in ("trade date 2026-11-23", "trading state: ACTIVE", "execution    down",
                   "prices that matter (held, locked, candidates, watch list): 1 of 2 fresh",
                   "STALE: 035720 (held, ", "coverage: 3 of 4 symbols priced, 2 fresh now",
                   "market time 2026-11-23 14:00:00 KST", "(wall clock ", " wall clock by ",
                   "open intents 1", "open orders 1", "positions 2",
                   "005930", "+16,947", "STALE", "total +34,008", "realized +21,383 (2 trips, 1W/1L)",
                   "unrealized +12,625", "p50 80ms", "ServiceDown", "ReconcileCorrection"):
        assert needle in screen, f"{needle!r} not on the screen:\n{screen}"
    assert not leaked(screen + out.stderr)


def test_status_json_is_the_dashboard_snapshot(seeded_module: TestDb) -> None:
    out = _cli(seeded_module, "status", "--json")
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    assert snap["pnl"]["total"] == float(seed.TOTAL)
    assert {p["symbol"] for p in snap["positions"]} == {"005930", "035720"}
    assert not leaked(out.stdout + out.stderr)


def test_healthcheck_reads_the_heartbeats(seeded_module: TestDb) -> None:
    seed.touch_heartbeats(seeded_module.admin_url)
    assert _cli(seeded_module, "healthcheck", "pricesync").returncode == 0
    assert _cli(seeded_module, "healthcheck", "execution").returncode == 1
