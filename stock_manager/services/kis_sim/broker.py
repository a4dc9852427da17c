"""The simulated broker: accounts, order entry, modify/cancel, executions and their notices.

Everything runs on one event loop, so there are no locks: a request handler calls into the
broker, the broker advances the symbol to the market clock and matches, and each execution
settles cash and holdings and emits its notice before the handler returns.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from stock_manager.shared.clock import ScaledClock, kst
from stock_manager.shared.market_rules import (
    Phase,
    commission,
    on_tick,
    phase_at,
    sell_tax,
    session_on,
    trade_date,
)

from . import messages as m
from .accounts import Account
from .config import SimConfig
from .listing import NO_DESIGNATION, Designation, kospi200_members, master_designations, seeded_designations
from .market import Interruption, SymbolState, day_date, day_number, expected_volume, hhmmss
from .orders import CLOSE_PRICE_DVSN, ORDER_COND, PRICELESS, Fill, Order, OrderKind, Side
from .replay import Recording
from .replay import load as load_recording
from .universe import Symbol, build_universe, read_master_dir, universe_from_master

REAL_DVSN = frozenset(
    {"00", "01", "02", "03", "04", "05", "06", "07", "11", "12", "13", "14", "15", "16", "21", "22", "23", "24"}
)
PAPER_DVSN = frozenset({"00", "01", "02", "03", "04"})
# accepted by KIS on real accounts but not modelled by the simulator (pre-open off-hours, mid-price, stop)
UNMODELLED_DVSN = frozenset({"05", "21", "22", "23", "24"})
NO_AUCTION_DVSN = frozenset({"03", "04", "11", "12", "13", "14", "15", "16"})
# 조건부지정가 becomes a market order when the closing call starts; it cannot join the call itself
NO_CLOSING_CALL_DVSN = frozenset({"02"})
MARKET_DVSN = frozenset({"01", "13", "14"})
# after the close each window takes exactly one order type, and that type no other window
SESSION_DVSN: dict[Phase, str] = {Phase.POST_CLOSE: CLOSE_PRICE_DVSN, Phase.AFTER_HOURS: "07"}
OFF_HOURS_DVSN = frozenset(SESSION_DVSN.values())
_ACCOUNT_RE = re.compile(r"^\d{8}$")
_PRDT_RE = re.compile(r"^\d{2}$")


class NoticeSink(Protocol):
    """The WebSocket side: delivers H0STCNI0/9 notices to the app key's session."""

    def wants_notices(self, app_key: str) -> bool: ...

    def send_notice(self, app_key: str, fields: list[str]) -> None: ...


class _NoNotices:
    def wants_notices(self, app_key: str) -> bool:
        return False

    def send_notice(self, app_key: str, fields: list[str]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Accepted:
    order: Order
    msg: m.Msg


def _ts_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Broker:
    def __init__(self, config: SimConfig, clock: ScaledClock) -> None:
        self.config = config
        self.clock = clock
        # a replay's market is the recorded day's (replay.py): its symbols, designations and clock
        self.replay: Recording | None = load_recording(config.replay) if config.replay is not None else None
        records = read_master_dir(config.master_dir) if config.master_dir is not None else None
        if self.replay is not None:
            self.universe: dict[str, Symbol] = self.replay.universe
            self.kospi200 = self.replay.kospi200
            self.first_designations = self.replay.designations
            if config.clock_start is None:
                clock.set(self.replay.start_at)
        else:
            self.universe = (
                universe_from_master(records, config.seed, config.extra_halted) if records is not None
                else build_universe(config.seed, config.universe_size, config.extra_halted))
            self.kospi200 = kospi200_members(self.universe)
            # what a reset goes back to: real master files' designations, else the seed's
            self.first_designations = (
                master_designations(records, self.universe) if records is not None
                else seeded_designations(self.universe, config.seed, self.kospi200))
        self.notices: NoticeSink = _NoNotices()
        self.fault_rng = random.Random(config.seed ^ 0x5EED)
        self.exchange_reject_rate = 0.0
        self.reset()

    def reset(self) -> None:
        self.states: dict[str, SymbolState] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: list[Order] = []
        self.by_odno: dict[tuple[date, int], Order] = {}
        self.fills: list[Fill] = []
        self.active: set[str] = set()
        self._seq = 0
        self._exec_seq = 0
        self._odno_date: date | None = None
        self._odno_next = self.config.odno_start
        # the control API changes them until the next reset
        self.designations: dict[str, Designation] = dict(self.first_designations)

    # ------------------------------------------------------------------ lookups

    def now_ts(self) -> float:
        return self.clock.now().timestamp()

    def state(self, code: str, now: float | None = None) -> SymbolState:
        """The symbol's state advanced to the market clock (created on first touch)."""
        ts = self.now_ts() if now is None else now
        st = self.states.get(code)
        if st is None:
            sym, k200 = self.universe[code], code in self.kospi200
            st = (self.replay.state(sym, ts, self, kospi200=k200) if self.replay is not None
                  else SymbolState(sym, self.config.seed, ts, self, kospi200=k200))
            st.designation = self.designation(code)
            self.states[code] = st
        st.advance(ts)
        return st

    def expected_volume(self, sym: Symbol, ts: float) -> int:
        """The volume of a symbol nothing has touched yet, for a ranking: as recorded in a replay."""
        if self.replay is not None:
            return self.replay.recorded_volume(sym.code, ts)
        return expected_volume(sym, self.config.seed, ts)

    def designation(self, code: str) -> Designation:
        return self.designations.get(code, NO_DESIGNATION)

    def designate(self, code: str, designation: Designation) -> None:
        """Change a symbol's designations (the control API's); the market sees them at once."""
        if designation == NO_DESIGNATION:
            self.designations.pop(code, None)
        else:
            self.designations[code] = designation
        st = self.states.get(code)
        if st is not None:
            st.designation = designation

    def vi_now(self, code: str) -> Interruption | None:
        """The VI the symbol is in now; None as well for a symbol nothing has touched yet."""
        st = self.states.get(code)
        if st is None:
            return None
        st.advance(self.now_ts())
        return st.vi

    def account(self, app_key: str, cano: str, prdt: str, *, create: bool = True) -> Account:
        if not _ACCOUNT_RE.match(cano) or not _PRDT_RE.match(prdt):
            raise m.BizError(m.INVALID_ACCOUNT, 500)
        key = f"{cano}-{prdt}"
        acct = self.accounts.get(key)
        if acct is None:
            if not create:
                raise m.BizError(m.INVALID_ACCOUNT, 500)
            cash = self.config.starting_cash
            acct = self.accounts[key] = Account(key, cano, prdt, app_key, cash, cash)
        elif acct.app_key != app_key:
            # an account belongs to the app key that first used it
            raise m.BizError(m.INVALID_ACCOUNT, 500)
        return acct

    def find_order(self, day: date, odno: str) -> Order | None:
        try:
            return self.by_odno.get((day, int(odno)))
        except ValueError:
            return None

    def _next_odno(self, day: date) -> str:
        if self._odno_date != day:
            self._odno_date = day
            self._odno_next = self.config.odno_start
        n = self._odno_next
        self._odno_next += 1
        return f"{n:010d}"

    # ------------------------------------------------------------------ checks

    def _session_check(self, now: datetime) -> Phase:
        phase = phase_at(now)
        if phase is Phase.CLOSED or (phase in SESSION_DVSN and self.config.env != "real"):
            # paper has no market after the close
            # a closed day (weekend, holiday) answers as after the close, all day
            local = kst(now)
            session = session_on(local.date())
            if session is not None and local.time() < session.open_auction_start:
                raise m.BizError(m.before_open(self.config.env))
            raise m.BizError(m.after_close(self.config.env))
        return phase

    def _dvsn_check(self, ord_dvsn: str, phase: Phase) -> None:
        allowed = REAL_DVSN if self.config.env == "real" else PAPER_DVSN
        if ord_dvsn not in allowed or ord_dvsn in UNMODELLED_DVSN:
            raise m.BizError(m.unsupported_dvsn(self.config.env))
        session_dvsn = SESSION_DVSN.get(phase)
        if session_dvsn is not None:
            if ord_dvsn != session_dvsn:
                # a regular order after 15:30 meets the close; an off-hours one the wrong window
                raise m.BizError(m.OFF_HOURS_CLOSED if ord_dvsn in OFF_HOURS_DVSN else m.after_close(self.config.env))
            return
        if ord_dvsn in OFF_HOURS_DVSN:
            raise m.BizError(m.OFF_HOURS_CLOSED)
        if phase is not Phase.CONTINUOUS and ord_dvsn in NO_AUCTION_DVSN:
            raise m.BizError(m.NOT_IN_AUCTION)
        if phase is Phase.CLOSING_AUCTION and ord_dvsn in NO_CLOSING_CALL_DVSN:
            raise m.BizError(m.NOT_IN_AUCTION)

    @staticmethod
    def _vi_dvsn_check(ord_dvsn: str, st: SymbolState) -> None:
        """A VI auction is single-price trading: the types a call refuses, it refuses too."""
        if st.vi is not None and ord_dvsn in NO_AUCTION_DVSN:
            raise m.BizError(m.NOT_IN_AUCTION)

    @staticmethod
    def _qty(raw: str) -> int:
        if not raw.isdigit() or int(raw) <= 0:
            raise m.BizError(m.BAD_QTY)
        return int(raw)

    def _price(self, raw: str, ord_dvsn: str, st: SymbolState) -> int:
        if ord_dvsn in PRICELESS or ord_dvsn == CLOSE_PRICE_DVSN:
            return 0
        if not raw.isdigit() or int(raw) <= 0 or not on_tick(int(raw), st.sym.market):
            raise m.BizError(m.OFF_TICK)
        price = int(raw)
        # 시간외 단일가 prices stay within ±10 % of the close (inside the daily limits)
        lower, upper = (st.ah_lower, st.ah_upper) if ord_dvsn == "07" else (st.lower, st.upper)
        if price > upper:
            raise m.BizError(m.OVER_UPPER)
        if price < lower:
            raise m.BizError(m.UNDER_LOWER)
        return price

    def _reserve_for(self, qty: int, price: int, st: SymbolState, ord_dvsn: str) -> int:
        """Cash a buy ties up: at the order price, at the close for 장후 시간외 (its only price), or at
        the upper limit when it has none (as KIS)."""
        unit = price if price > 0 else st.close_price if ord_dvsn == CLOSE_PRICE_DVSN else st.upper
        amount = qty * unit
        return amount + int(commission(amount, self.config.commission_rate))

    def _new_order(
        self,
        acct: Account,
        st: SymbolState,
        side: Side,
        ord_dvsn: str,
        qty: int,
        price: int,
        now: datetime,
        kind: OrderKind = OrderKind.NEW,
        orgn: Order | None = None,
    ) -> Order:
        day = trade_date(now)
        self._seq += 1
        o = Order(
            seq=self._seq,
            odno=self._next_odno(day),
            trade_date=day,
            account=acct.key,
            app_key=acct.app_key,
            symbol=st.sym.code,
            symbol_name=st.sym.name,
            side=side,
            ord_dvsn=ord_dvsn,
            qty=qty,
            price=price,
            received_at=now,
            received_wall=time.time(),
            ord_tmd=kst(now).strftime("%H%M%S"),
            branch=self.config.branch,
            kind=kind,
            orgn_odno=orgn.odno if orgn else "",
            cond=ORDER_COND.get(ord_dvsn, "0"),
        )
        if price > 0:
            o.limit = price
        elif ord_dvsn == CLOSE_PRICE_DVSN:
            o.limit = st.close_price
        else:
            o.limit = st.upper if side == "BUY" else st.lower
            o.aggressive = ord_dvsn in MARKET_DVSN
        self.orders.append(o)
        self.by_odno[(day, int(o.odno))] = o
        acct.orders.append(o)
        if orgn is not None:
            orgn.children.append(o.odno)
        return o

    # ------------------------------------------------------------------ order entry

    def place(
        self,
        app_key: str,
        cano: str,
        prdt: str,
        code: str,
        side: Side,
        ord_dvsn: str,
        qty_raw: str,
        price_raw: str,
    ) -> Accepted:
        now = self.clock.now()
        acct = self.account(app_key, cano, prdt)
        sym = self.universe.get(code)
        if sym is None:
            raise m.BizError(m.NO_SYMBOL)
        qty = self._qty(qty_raw)
        phase = self._session_check(now)
        self._dvsn_check(ord_dvsn, phase)
        if sym.halted:
            raise m.BizError(m.HALTED)
        ts = now.timestamp()
        st = self.state(code, ts)
        self._vi_dvsn_check(ord_dvsn, st)
        price = self._price(price_raw, ord_dvsn, st)
        today = trade_date(now)
        reserve = 0
        if side == "BUY":
            reserve = self._reserve_for(qty, price, st, ord_dvsn)
            if reserve > acct.orderable_cash:
                raise m.BizError(m.INSUFFICIENT_CASH)
        else:
            pos = acct.positions.get(code)
            if pos is None or pos.sellable < qty:
                raise m.BizError(m.INSUFFICIENT_QTY)
        o = self._new_order(acct, st, side, ord_dvsn, qty, price, now)
        self._enter(acct, st, o, reserve, today, ts)
        return Accepted(o, m.order_ok(self.config.env, side))

    def _enter(self, acct: Account, st: SymbolState, o: Order, reserve: int, today: date, ts: float) -> None:
        if o.side == "BUY":
            o.reserved_cash = reserve
            acct.reserved += reserve
        else:
            acct.position(o.symbol, o.symbol_name, today).sell_reserved += o.qty
        self._notify(o, rctf="0" if o.kind is OrderKind.NEW else "1", accept="1", qty=o.qty, ts=ts)
        if self.exchange_reject_rate and self.fault_rng.random() < self.exchange_reject_rate:
            self._release(acct, o, o.remaining)
            o.rejected_qty = o.remaining
            o.dead = True
            o.settle_status()
            self._notify(o, rctf="0", accept="1", qty=o.qty, ts=ts, rejected=True)
            return
        st.submit(o, ts)
        if o.live:
            self.active.add(o.symbol)

    # ------------------------------------------------------------------ modify / cancel

    def revise(
        self,
        app_key: str,
        cano: str,
        prdt: str,
        orgn_odno: str,
        rvse_cncl: str,
        ord_dvsn: str,
        qty_raw: str,
        price_raw: str,
        all_qty: bool,
    ) -> Accepted:
        now = self.clock.now()
        acct = self.account(app_key, cano, prdt)
        if rvse_cncl not in ("01", "02"):
            raise m.BizError(m.BAD_RVSE_CODE)
        day = trade_date(now)
        orig = self.find_order(day, orgn_odno)
        if orig is None or orig.account != acct.key or orig.kind is OrderKind.CANCEL:
            raise m.BizError(m.NO_ORIGINAL)
        phase = self._session_check(now)
        ts = now.timestamp()
        st = self.state(orig.symbol, ts)
        remaining = orig.remaining if orig.live else 0
        if remaining <= 0:
            raise m.BizError(m.nothing_to_revise(self.config.env))
        qty = remaining if all_qty else self._qty(qty_raw)
        if qty > remaining:
            raise m.BizError(m.REVISE_OVER)
        if rvse_cncl == "02":
            c = self._new_order(acct, st, orig.side, orig.ord_dvsn, qty, orig.price, now, OrderKind.CANCEL, orig)
            self._release(acct, orig, qty)
            orig.cancelled_qty += qty
            if orig.remaining <= 0:
                st.remove(orig)
            orig.settle_status()
            c.settle_status()
            c.dead = True
            self._notify(c, rctf="2", accept="1", qty=qty, ts=ts)
            return Accepted(c, m.cancel_ok(self.config.env))
        self._dvsn_check(ord_dvsn, phase)
        self._vi_dvsn_check(ord_dvsn, st)
        price = self._price(price_raw, ord_dvsn, st)
        reserve = 0
        if orig.side == "BUY":
            reserve = self._reserve_for(qty, price, st, ord_dvsn)
            freed = orig.reserved_cash if qty == orig.remaining else orig.reserved_cash * qty // orig.remaining
            if reserve > acct.orderable_cash + freed:
                raise m.BizError(m.INSUFFICIENT_CASH)
        self._release(acct, orig, qty)
        orig.revised_qty += qty
        if orig.remaining <= 0:
            st.remove(orig)
        orig.settle_status()
        new = self._new_order(acct, st, orig.side, ord_dvsn, qty, price, now, OrderKind.MODIFY, orig)
        self._enter(acct, st, new, reserve, day, ts)
        return Accepted(new, m.modify_ok(self.config.env))

    def _release(self, acct: Account, o: Order, qty: int) -> None:
        """Free what ``qty`` of the order's remaining quantity had tied up."""
        remaining = o.remaining
        if remaining <= 0:
            return
        if o.side == "BUY":
            freed = o.reserved_cash if qty >= remaining else o.reserved_cash * qty // remaining
            o.reserved_cash -= freed
            acct.reserved -= freed
        else:
            pos = acct.positions.get(o.symbol)
            if pos is not None:
                pos.sell_reserved -= min(qty, remaining)

    # ------------------------------------------------------------------ FillSink

    def on_fill(self, order: Order, qty: int, price: int, ts: float) -> None:
        acct = self.accounts[order.account]
        day = day_date(day_number(ts))
        sym = self.universe[order.symbol]
        amount = qty * price
        fee = int(commission(amount, self.config.commission_rate))
        tax = int(sell_tax(amount, sym.market, day)) if order.side == "SELL" else 0
        remaining = order.remaining
        pos = acct.position(order.symbol, order.symbol_name, day)
        flows = acct.day(day)
        if order.side == "BUY":
            freed = order.reserved_cash if qty >= remaining else order.reserved_cash * qty // remaining
            order.reserved_cash -= freed
            acct.reserved -= freed
            acct.cash -= amount + fee
            pos.qty += qty
            pos.cost += amount
            pos.thdt_buy_qty += qty
            flows.buy_amt += amount
        else:
            cost = round(pos.cost * qty / pos.qty) if pos.qty else 0
            pos.cost -= cost
            pos.qty -= qty
            pos.sell_reserved -= qty
            pos.thdt_sll_qty += qty
            acct.cash += amount - fee - tax
            flows.sell_amt += amount
        flows.costs += fee + tax
        order.filled_qty += qty
        order.filled_amt += amount
        order.fee += fee
        order.tax += tax
        if order.remaining <= 0:
            order.dead = True
        order.settle_status()
        self._exec_seq += 1
        self.fills.append(
            Fill(
                exec_seq=self._exec_seq,
                odno=order.odno,
                trade_date=order.trade_date,
                account=order.account,
                symbol=order.symbol,
                side=order.side,
                qty=qty,
                price=price,
                ts=_ts_dt(ts),
                fee=fee,
                tax=tax,
            )
        )
        self._notify(order, rctf="0", accept="2", qty=qty, ts=ts, fill_price=price)

    def on_expire(self, order: Order, ts: float) -> None:
        acct = self.accounts[order.account]
        self._release(acct, order, order.remaining)
        order.expired_qty += order.remaining
        order.dead = True
        order.settle_status()

    def on_ioc_cancel(self, order: Order, ts: float) -> None:
        acct = self.accounts[order.account]
        qty = order.remaining
        self._release(acct, order, qty)
        order.cancelled_qty += qty
        order.dead = True
        order.settle_status()
        self._notify(order, rctf="0", accept="3", qty=qty, ts=ts)

    # ------------------------------------------------------------------ notices

    def _notify(
        self,
        o: Order,
        *,
        rctf: str,
        accept: str,
        qty: int,
        ts: float,
        fill_price: int | None = None,
        rejected: bool = False,
    ) -> None:
        if not self.notices.wants_notices(o.app_key):
            return
        acct = self.accounts[o.account]
        is_fill = fill_price is not None
        fields = [
            "",  # CUST_ID: the HTS ID of the subscription, filled in by the WebSocket hub
            acct.cano + acct.prdt,
            o.odno,
            o.orgn_odno,
            "01" if o.side == "SELL" else "02",
            rctf,
            o.ord_dvsn,
            o.cond,
            o.symbol,
            f"{qty:010d}",
            f"{(fill_price if is_fill else o.price) or 0:09d}",
            hhmmss(ts),
            "1" if rejected else "0",
            "2" if is_fill else "1",
            accept,
            o.branch,
            f"{o.qty:09d}",
            self.config.account_name,
        ]
        if self.config.notice_fields == 26:
            fields += ["", "1", "Y", "", "10", "", o.symbol_name, f"{o.price:09d}"]
        else:
            fields += [o.symbol_name, "10", "", o.symbol_name, f"{o.price:09d}"]
        self.notices.send_notice(o.app_key, fields)

    # ------------------------------------------------------------------ background

    def tick(self, now: float) -> None:
        """Advance every symbol with open orders so that resting orders fill without a request."""
        for code in list(self.active):
            st = self.state(code, now)
            if not st.has_open_orders():
                self.active.discard(code)
