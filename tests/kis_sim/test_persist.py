"""A simulator with a data directory keeps its state like a broker across restarts and SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from stock_manager.cli import child_specs
from stock_manager.services.kis_sim import persist
from stock_manager.services.kis_sim.app import create_app, uvicorn_config
from stock_manager.services.kis_sim.auth import Auth
from stock_manager.services.kis_sim.broker import Broker
from stock_manager.services.kis_sim.config import SimConfig
from stock_manager.services.kis_sim.orders import OrderKind
from stock_manager.services.kis_sim.persist import Codec, DurableNotices, StateError, Store, journal_path, load_image
from stock_manager.shared.clock import ScaledClock
from stock_manager.shared.settings import Settings
from tests.kis_sim.conftest import MONDAY_10AM, Kis, SimServer, free_port, make_config

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "005930"


class DurableSim(SimServer):
    """The test simulator, on a data directory."""

    def __init__(self, config: SimConfig, data_dir: Path) -> None:
        super().__init__(config)
        self.app = create_app(config, data_dir=data_dir)
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", self.port))


def stable(balance: dict[str, Any]) -> dict[str, Any]:
    """The balance without the market's last prices (the market path after a restart is a new one)."""
    holdings = {s: {k: v for k, v in h.items() if k != "last_price"} for s, h in balance["holdings"].items()}
    return {**balance, "holdings": holdings}


def by_odno(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["odno"]: r for r in rows}


async def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def same_client(kis: Kis, server: SimServer) -> Kis:
    """The client of ``kis``, token and all, pointed at ``server``."""
    again = Kis(server, appkey=kis.appkey, appsecret=kis.appsecret, cano=kis.cano)
    again.token = kis.token
    return again


async def test_restart_keeps_accounts_orders_fills_tokens_and_clock(tmp_path: Path) -> None:
    with DurableSim(make_config(), tmp_path) as s1:
        kis = Kis(s1)
        await kis.login()
        quote = await kis.price(SYMBOL)
        low, high = int(quote["stck_llam"]), int(quote["stck_mxpr"])
        assert (await kis.order("BUY", SYMBOL, 10)).json()["rt_cd"] == "0"  # fills at once
        assert (await kis.order("SELL", SYMBOL, 3)).json()["rt_cd"] == "0"
        resting_buy = (await kis.order("BUY", SYMBOL, 7, low + 1000)).json()["output"]["ODNO"]
        resting_sell = (await kis.order("SELL", SYMBOL, 2, high - 1000)).json()["output"]["ODNO"]
        partly = (await kis.order("BUY", SYMBOL, 10, low + 500)).json()["output"]["ODNO"]
        assert (await kis.revise(partly, cancel=True, qty=4)).json()["rt_cd"] == "0"
        account = f"{kis.cano}-01"
        before = {
            "balance": stable(s1.control("GET", f"/sim/balance?account={account}")),
            "orders": s1.control("GET", "/sim/orders"),
            "fills": s1.control("GET", "/sim/fills"),
        }
        stopped_at = datetime.fromisoformat(s1.control("GET", "/sim/clock")["now"])
        await kis.close()
    assert before["balance"]["holdings"][SYMBOL]["sellable_qty"] == 5  # 7 held, 2 offered
    assert by_odno(before["orders"])[partly]["remaining_qty"] == 6

    with DurableSim(make_config(), tmp_path) as s2:
        clock = s2.control("GET", "/sim/clock")
        resumed_at = datetime.fromisoformat(clock["now"])
        assert timedelta(0) <= resumed_at - stopped_at < timedelta(seconds=5)
        assert clock["speed"] == 1.0
        assert stable(s2.control("GET", f"/sim/balance?account={account}")) == before["balance"]
        assert s2.control("GET", "/sim/orders") == before["orders"]
        assert s2.control("GET", "/sim/fills") == before["fills"]

        kis2 = await same_client(kis, s2)  # the token from before the restart still works
        r = await kis2.balance()
        assert (r.status_code, r.json()["rt_cd"]) == (200, "0"), r.text
        assert {row["pdno"]: row["hldg_qty"] for row in r.json()["output1"]} == {SYMBOL: "7"}
        rows = by_odno((await kis2.daily_ccld()).json()["output1"])
        assert rows[resting_buy]["rmn_qty"] == "7" and rows[partly]["rmn_qty"] == "6"

        # order numbers go on from where they were; the resting buy can still be cancelled
        cancelled = (await kis2.revise(resting_buy, cancel=True)).json()
        assert cancelled["rt_cd"] == "0", cancelled
        assert int(cancelled["output"]["ODNO"]) == max(int(o["odno"]) for o in before["orders"]) + 1
        after_cancel = s2.control("GET", f"/sim/balance?account={account}")
        freed = by_odno(before["orders"])[resting_buy]["qty"] * (low + 1000)
        assert after_cancel["orderable_cash"] >= before["balance"]["orderable_cash"] + freed

        # the others are still in their books: the close decides them (filled or expired, not left open)
        s2.control("POST", "/sim/clock", {"at": "2026-11-23T15:31:00+09:00"})

        def decided() -> bool:
            rows = by_odno(s2.control("GET", "/sim/orders"))
            return all(rows[o]["remaining_qty"] == 0 for o in (resting_sell, partly))

        await wait_for(decided)
        await kis2.close()


async def test_an_order_resting_in_the_opening_auction_fills_after_a_restart(tmp_path: Path) -> None:
    config = make_config(clock_start=datetime.fromisoformat("2026-11-23T08:40:00+09:00"))
    with DurableSim(config, tmp_path) as s1:
        kis = Kis(s1)
        await kis.login()
        upper = int((await kis.price(SYMBOL))["stck_mxpr"])
        placed = (await kis.order("BUY", SYMBOL, 5, upper)).json()
        assert placed["rt_cd"] == "0", placed
        odno = placed["output"]["ODNO"]
        assert by_odno(s1.control("GET", "/sim/orders"))[odno]["status"] == "ACCEPTED"
        await kis.close()

    with DurableSim(config, tmp_path) as s2:
        assert by_odno(s2.control("GET", "/sim/orders"))[odno]["status"] == "ACCEPTED"
        s2.control("POST", "/sim/clock", {"at": "2026-11-23T09:00:01+09:00"})
        await wait_for(lambda: by_odno(s2.control("GET", "/sim/orders"))[odno]["status"] == "FILLED")
        assert sum(f["qty"] for f in s2.control("GET", "/sim/fills") if f["odno"] == odno) == 5
        assert s2.control("GET", f"/sim/balance?account={kis.cano}-01")["holdings"][SYMBOL]["qty"] == 5


async def test_reset_clears_the_stored_state(tmp_path: Path) -> None:
    with DurableSim(make_config(), tmp_path) as s1:
        kis = Kis(s1)
        await kis.login()
        assert (await kis.order("BUY", SYMBOL, 3)).json()["rt_cd"] == "0"
        s1.control("POST", "/sim/reset")
        assert s1.control("GET", "/sim/orders") == []
        await kis.close()

    with DurableSim(make_config(), tmp_path) as s2:
        assert s2.control("GET", "/sim/orders") == []
        assert s2.control("GET", "/sim/fills") == []
        balance = s2.control("GET", "/sim/balance")
        assert (balance["accounts"], balance["cash"]) == ([], 100_000_000)
        # the clock stays through a reset, as it does without restarts
        assert s2.control("GET", "/sim/clock")["now"].startswith("2026-11-23T10:00")


async def test_a_data_directory_serves_one_simulator_at_a_time(tmp_path: Path) -> None:
    with DurableSim(make_config(), tmp_path), pytest.raises(StateError):
        create_app(make_config(), data_dir=tmp_path)


# ------------------------------------------------------------------------------ a real process


@dataclass
class SimProcess:
    """``stock-manager run kis-sim --data-dir`` as its own process."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    config: SimConfig = field(default_factory=lambda: SimConfig(env="real"))

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "stock_manager",
            "run",
            "kis-sim",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL"))}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/sim/clock", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.proc.communicate()[1]
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(method, self.url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


async def test_sigkill_after_a_fill_keeps_the_fill(tmp_path: Path) -> None:
    first = SimProcess(tmp_path)
    try:
        first.control("POST", "/sim/clock", {"at": MONDAY_10AM, "speed": 1})
        kis = Kis(first)  # type: ignore[arg-type]  # Kis needs only url, config and control
        await kis.login()
        r = (await kis.order("BUY", SYMBOL, 4)).json()
        assert r["rt_cd"] == "0", r
        odno = r["output"]["ODNO"]
    finally:
        first.kill()  # no clean shutdown: what the answer told the client is all there is
    await kis.close()

    second = SimProcess(tmp_path)
    try:
        fills = [f for f in second.control("GET", "/sim/fills") if f["odno"] == odno]
        assert sum(f["qty"] for f in fills) == 4
        assert by_odno(second.control("GET", "/sim/orders"))[odno]["status"] == "FILLED"
        holdings = second.control("GET", f"/sim/balance?account={kis.cano}-01")["holdings"]
        assert holdings[SYMBOL]["qty"] == 4
        now = datetime.fromisoformat(second.control("GET", "/sim/clock")["now"])
        assert timedelta(0) <= now - datetime.fromisoformat(MONDAY_10AM) < timedelta(minutes=1)
    finally:
        second.kill()


def test_up_gives_the_simulator_its_data_directory(tmp_path: Path) -> None:
    specs = {s.name: s for s in child_specs(Settings(database_url="host=x", sm_data_dir=tmp_path), "host=x")}
    argv = list(specs["kis-sim"].argv)
    assert argv[argv.index("--data-dir") + 1] == str(tmp_path.resolve() / "kis-sim")


# ------------------------------------------------------------------------------ units


def open_store(data_dir: Path, at: str = MONDAY_10AM) -> tuple[Broker, Store]:
    """A broker with its store, as ``Sim`` wires them, without a server."""
    config = make_config(clock_start=datetime.fromisoformat(at))
    clock = ScaledClock(config.clock_start)
    broker = Broker(config, clock)
    store = Store(data_dir, broker, Auth(config, ScaledClock()), clock)
    store.restore()
    return broker, store


def abandon(store: Store) -> None:
    """What SIGKILL does to a store: its files stay as they are, its lock goes."""
    os.close(store._fd)
    os.close(store._lock_fd)


def rest_a_buy(broker: Broker, qty: int = 1) -> str:
    low = broker.state(SYMBOL).lower
    return broker.place("APP", "12345678", "01", SYMBOL, "BUY", "00", str(qty), str(low + 100)).order.odno


def stored_orders(data_dir: Path) -> dict[str, dict[str, Any]]:
    found = load_image(data_dir)
    assert found is not None
    image = found[1]
    names = image.schema["order"]
    return {row[names.index("odno")]: dict(zip(names, row, strict=True)) for row in image.orders.values()}


async def test_a_fill_notice_leaves_only_after_the_fill_is_journaled(tmp_path: Path) -> None:
    broker, store = open_store(tmp_path)
    seen: list[int] = []

    class Reader:
        """A notice sink that reads the data directory as a restarted simulator would."""

        def wants_notices(self, app_key: str) -> bool:
            return True

        def send_notice(self, app_key: str, fields: list[str]) -> None:
            found = load_image(tmp_path)
            assert found is not None
            seen.append(len(found[1].fills))

    broker.notices = DurableNotices(Reader(), store)
    broker.place("APP", "12345678", "01", SYMBOL, "BUY", "01", "3", "0")
    store.close()
    assert len(seen) >= 2 and seen[0] == 0  # the accept notice, then one per fill
    assert seen[1:] == list(range(1, len(seen)))


async def test_a_snapshot_cut_short_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker, store = open_store(tmp_path)
    first = rest_a_buy(broker)
    store.flush()

    def power_cut(path: Path, data: bytes) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(persist, "_write_synced", power_cut)
    with pytest.raises(OSError, match="went away"):
        await store.compact_in_background()
    second = rest_a_buy(broker)  # journaled in the next generation, after the unfinished snapshot's
    store.flush()
    abandon(store)
    assert set(stored_orders(tmp_path)) == {first, second}
    monkeypatch.undo()
    again, store = open_store(tmp_path)
    assert [o.odno for o in again.orders] == [first, second]
    assert again.accounts["12345678-01"].reserved == sum(o.reserved_cash for o in again.orders) > 0
    store.close()


async def test_the_sweep_journals_what_the_market_did_on_its_own(tmp_path: Path) -> None:
    broker, store = open_store(tmp_path, "2026-11-23T15:19:00+09:00")
    odno = rest_a_buy(broker)
    store.flush()
    broker.clock.set(datetime.fromisoformat("2026-11-23T15:31:00+09:00"))
    store.sweep()  # the close expired the order; nobody asked about it
    abandon(store)
    assert stored_orders(tmp_path)[odno]["status"] == "EXPIRED"


async def test_an_order_whose_session_ended_while_down_expires_on_restore(tmp_path: Path) -> None:
    broker, store = open_store(tmp_path)
    odno = rest_a_buy(broker, qty=5)
    store.close()
    config = make_config()
    clock = ScaledClock(datetime.fromisoformat("2026-11-24T10:00:00+09:00"))
    again = Broker(config, clock)
    found = load_image(tmp_path)
    assert found is not None
    persist.rebuild(again, found[1])
    assert again.accounts["12345678-01"].reserved > 0
    persist.reopen_books(again, clock.now().timestamp())
    order = again.find_order(date(2026, 11, 23), odno)
    assert order is not None and (order.status.value, order.expired_qty) == ("EXPIRED", 5)
    assert again.accounts["12345678-01"].reserved == 0


@dataclass
class Thing:
    n: int
    on: date
    at: datetime
    kind: OrderKind
    tags: list[str]
    maybe: date | None = None
    added_later: str = "default"


def test_codec_follows_the_fields() -> None:
    codec = Codec(Thing)
    thing = Thing(1, date(2026, 11, 23), datetime.fromisoformat(MONDAY_10AM), OrderKind.CANCEL, ["a"])
    stored = json.loads(json.dumps(codec.row(thing)))
    assert stored == [1, "2026-11-23", "2026-11-23T10:00:00+09:00", "CANCEL", ["a"], None, "default"]
    assert codec.decode(codec.names, stored) == thing
    # a record written before ``added_later`` existed, with a field since dropped
    old_names = [*codec.names[:-1], "dropped_since"]
    assert codec.decode(old_names, [*stored[:-1], 1]) == thing

    @dataclass
    class Nested:
        inner: Thing
        n: int

    with pytest.raises(TypeError, match="no journal rule"):
        Codec(Nested)


def test_a_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    broker, store = open_store(tmp_path)
    rest_a_buy(broker)
    store.flush()
    with journal_path(tmp_path, store._gen).open("ab") as f:
        f.write(b'{"orders":[[2,"00000')
    abandon(store)
    assert len(stored_orders(tmp_path)) == 1
    again, store = open_store(tmp_path)
    assert len(again.orders) == 1
    store.close()
