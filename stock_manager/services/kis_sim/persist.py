"""The simulator's memory across restarts: a JSON snapshot plus an append-only journal.

A broker does not forget its customers' cash, holdings, orders and fills because its gateway
restarted, and the system under test must not learn to expect that it does: with a data
directory, a restarted simulator comes back with what it had (CONTRACT.md section 4).

Layout of the data directory:

- ``state.json``: a snapshot of everything (written to a temporary file, fsynced, then
  ``os.replace``d over the old one, so it is always whole);
- ``journal-<gen>.jsonl``: one JSON line per batch of changes after snapshot ``gen``; journal
  ``gen + 1`` continues it while a newer snapshot is being written;
- ``lock``: held (``flock``) while a simulator uses the directory.

Why a journal and not only a debounced snapshot: a snapshot costs time proportional to the whole
state (every order of the day), so it cannot be written per order at thousands of orders a second,
and a debounced one leaves a window in which an acknowledged order or a notified fill exists only
in memory. A journal line costs time proportional to what changed. Hence the rule this module
keeps: *nothing leaves the simulator before it is in the journal*. Every HTTP answer and every
WebSocket fill notice is preceded by ``Store.flush`` (``app.py`` and ``DurableNotices``), and
``flush`` writes what changed since the last one with a single ``write``. Once ``write`` has
returned the line is in the operating system's page cache and survives the process being killed
(SIGKILL, OOM); it is not fsynced, so a power loss can take the last seconds (snapshots are
fsynced).

Records are JSON arrays in the order of their dataclass's fields, named once per snapshot in its
``schema``; the latest encoding of every record is kept in memory, so a new snapshot is a join of
bytes already made, written and fsynced on a worker thread while the journal carries on in the
next generation. One is written when the journal has grown to ``COMPACT_RATIO`` times the last
snapshot (at least ``COMPACT_MIN_BYTES``), on ``/sim/reset`` and on a clean shutdown, so the cost
per order stays constant however long the day.

What changed is found from the broker's own data rather than from hooks in its code: new rows in
``orders`` and ``fills`` (each fill and each modify/cancel row names the order it changed) and new
accounts. Changes the market makes on its own to open orders (expiry at the close, 조건부지정가
turning into a market order at 15:20) tell nobody; a sweep every ``SWEEP_INTERVAL_S`` catches them
and also records the clock, so a killed simulator resumes at most that long (in wall time) behind.
Whatever a crash inside that second leaves stale is put right on restore: reservations are
recomputed from the open orders, and an open order whose session is over expires.

Prices are not stored: the market model is a function of the seed and the time, and a restarted
simulator's symbols take a fresh path from the seed. Open orders are put back into their symbols'
books at the restored time. Tokens and approval keys are stored, so a client holding a token from
before the restart keeps working, as at KIS; fault settings are not (a restarted gateway starts
with the defaults, as after ``/sim/reset``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import os
import time
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from stock_manager.shared import platform
from stock_manager.shared.clock import ScaledClock
from stock_manager.shared.market_rules import Phase, phase_at, trade_date

from .accounts import Account, DayFlows, Position
from .auth import AppKey, Auth, Token
from .broker import Broker, NoticeSink
from .orders import Fill, Order

log = logging.getLogger(__name__)

FORMAT = 1
SNAPSHOT = "state.json"
FLUSH_INTERVAL_S = 0.1
SWEEP_INTERVAL_S = 1.0
COMPACT_MIN_BYTES = 16 * 1024 * 1024
COMPACT_RATIO = 2
# the record kinds of a batch and of a snapshot, each a list of encoded records
KINDS = ("accounts", "positions", "flows", "orders", "fills")
_REGULAR_SESSION = frozenset({Phase.PRE_OPEN, Phase.CONTINUOUS, Phase.CLOSING_AUCTION})

T = TypeVar("T")
Json = dict[str, Any]
Row = list[Any]

# one encoder for every record: json.dumps with options builds a new one per call
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _dump(value: Any) -> bytes:
    return _encode(value).encode()


def journal_path(data_dir: Path, gen: int) -> Path:
    return data_dir / f"journal-{gen}.jsonl"


class StateError(Exception):
    """The data directory cannot be used (locked by another simulator, or an unknown format)."""


# ---------------------------------------------------------------------------------------- codec


def _identity(value: Any) -> Any:
    return value


def _isoformat(value: date) -> str:
    return value.isoformat()


def _enum_value(value: Enum) -> Any:
    return value.value


def _plain(tp: Any) -> Any:
    """``X`` of ``X | None``; ``tp`` itself otherwise."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (types.UnionType, typing.Union) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _decoder(tp: Any, where: str) -> Callable[[Any], Any]:
    """How a JSON value becomes a field of type ``tp``; a type without a rule is an error, not a guess."""
    plain = _plain(tp)
    if plain is not tp:
        inner = _decoder(plain, where)
        return lambda v: None if v is None else inner(v)
    origin = typing.get_origin(tp)
    if origin is typing.Literal or tp in (int, str, bool):
        return _identity
    if tp is float:
        return float
    if tp is datetime:
        return datetime.fromisoformat
    if tp is date:
        return date.fromisoformat
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if origin in (list, tuple, set, frozenset) and all(a in (int, str, float, Ellipsis) for a in typing.get_args(tp)):
        return typing.cast(Callable[[Any], Any], origin)
    raise TypeError(f"{where}: a field of type {tp!r} has no journal rule; add one to persist.py")


def _encoder(tp: Any) -> Callable[[Any], Any] | None:
    """What a field's value needs to become JSON; None when the JSON encoder takes it as it is."""
    plain = _plain(tp)
    if plain in (date, datetime):
        return _isoformat
    if isinstance(plain, type) and issubclass(plain, Enum) and not issubclass(plain, str | int):
        return _enum_value
    if typing.get_origin(plain) in (set, frozenset):
        return sorted
    return None


class Codec(Generic[T]):
    """A plain-data dataclass to a JSON array and back, driven by its fields.

    Driven by ``dataclasses.fields`` rather than a list written here, so a field another change
    adds to ``Order`` travels along without touching this module (one with a type that has no
    rule fails at import, in every test). Arrays are read back by the field names stored with
    them: a record from before a field existed gets its default, and a stored field the class no
    longer has is dropped.
    """

    def __init__(self, cls: type[T], skip: Iterable[str] = ()) -> None:
        if not is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls)
        skipped = set(skip)
        names = tuple(f.name for f in fields(cls) if f.name not in skipped)
        if len(names) < 2:
            raise TypeError(f"{cls.__name__}: a record needs two fields or more")
        self.cls = cls
        self.names = names
        self._get = operator.attrgetter(*names)
        encoders = ((i, _encoder(hints[n])) for i, n in enumerate(names))
        self._convert = tuple((i, e) for i, e in encoders if e is not None)
        self._decoders = {n: _decoder(hints[n], f"{cls.__name__}.{n}") for n in names}

    def row(self, obj: T) -> Row:
        values = list(self._get(obj))
        for i, convert in self._convert:
            if values[i] is not None:
                values[i] = convert(values[i])
        return values

    def decode(self, names: Sequence[str], row: Sequence[Any]) -> T:
        decoders = self._decoders
        return self.cls(**{n: decoders[n](v) for n, v in zip(names, row, strict=True) if n in decoders})


ORDER = Codec(Order)
FILL = Codec(Fill)
ACCOUNT = Codec(Account, skip=("positions", "flows", "orders"))  # held apart, below
POSITION = Codec(Position)
FLOWS = Codec(DayFlows)
TOKEN = Codec(Token)
APP_KEY = Codec(AppKey, skip=("current",))  # the token it names is stored with the tokens
CODECS: dict[str, Codec[Any]] = {
    "order": ORDER,
    "fill": FILL,
    "account": ACCOUNT,
    "position": POSITION,
    "flows": FLOWS,
    "token": TOKEN,
    "app_key": APP_KEY,
}
SCHEMA = {name: list(codec.names) for name, codec in CODECS.items()}


def _order_mark(o: Order) -> tuple[Any, ...]:
    """What a sweep compares to see that the market changed an open order on its own."""
    return (o.status, o.remaining, o.limit, o.aggressive, o.dead)


# ---------------------------------------------------------------------------------------- image


class Image:
    """The stored state as JSON values: a snapshot with the journal's batches applied in order.

    Every batch carries whole records (never increments), so applying them in order leaves each
    record as it was last written.
    """

    def __init__(self, schema: dict[str, list[str]]) -> None:
        missing = set(CODECS) - set(schema)
        if missing:
            raise StateError(f"the stored schema lacks {sorted(missing)}")
        self.schema = schema
        self._account_key = schema["account"].index("key")
        self._position_key = schema["position"].index("symbol")
        self._order_key = schema["order"].index("seq")
        self._fill_key = schema["fill"].index("exec_seq")
        self.accounts: dict[str, Row] = {}
        self.positions: dict[tuple[str, str], Row] = {}
        self.flows: dict[tuple[str, str], Row] = {}
        self.orders: dict[int, Row] = {}
        self.fills: dict[int, Row] = {}
        self.clock: Json | None = None
        self.auth: Json | None = None

    def apply(self, batch: Json) -> None:
        for row in batch.get("accounts", ()):
            self.accounts[row[self._account_key]] = row
        for key, row in batch.get("positions", ()):
            self.positions[(key, row[self._position_key])] = row
        for key, day, row in batch.get("flows", ()):
            self.flows[(key, day)] = row
        for row in batch.get("orders", ()):
            self.orders[row[self._order_key]] = row
        for row in batch.get("fills", ()):
            self.fills[row[self._fill_key]] = row
        if "clock" in batch:
            self.clock = batch["clock"]
        if "auth" in batch:
            self.auth = batch["auth"]

    def decode(self, kind: str, row: Row) -> Any:
        return CODECS[kind].decode(self.schema[kind], row)


def load_image(data_dir: Path) -> tuple[int, Image] | None:
    """The snapshot in ``data_dir`` with its journals applied, and the last journal's generation.

    None when the directory holds no snapshot yet.
    """
    path = data_dir / SNAPSHOT
    if not path.exists():
        return None
    snap = json.loads(path.read_bytes())
    if snap.get("format") != FORMAT:
        raise StateError(f"{path}: format {snap.get('format')!r}, this simulator reads {FORMAT}")
    gen = int(snap["gen"])
    image = Image(snap["schema"])
    image.apply(snap)
    last = gen
    while (journal := journal_path(data_dir, gen)).exists():
        last = gen
        for n, line in enumerate(journal.read_bytes().splitlines()):
            try:
                image.apply(json.loads(line))
            except ValueError:
                # only the very last line can be torn (a write cut short); nothing came after it
                log.warning("%s: line %d is incomplete; the state is restored up to it", journal, n + 1)
                return last, image
        gen += 1
    return last, image


def encode_auth(auth: Auth) -> Json:
    return {
        "app_keys": [
            [APP_KEY.row(app), app.current.value if app.current is not None else None] for app in auth.app_keys.values()
        ],
        "tokens": [TOKEN.row(t) for t in auth.tokens.values()],
        "approvals": [[k, app_key, expires] for k, (app_key, expires) in auth.approvals.items()],
    }


def restore_auth(auth: Auth, image: Image, data: Json) -> None:
    tokens: list[Token] = [image.decode("token", row) for row in data.get("tokens", ())]
    auth.tokens = {t.value: t for t in tokens}
    auth.app_keys = {}
    for row, current in data.get("app_keys", ()):
        app: AppKey = image.decode("app_key", row)
        app.current = auth.tokens.get(current or "")
        auth.app_keys[app.key] = app
    auth.approvals = {k: (app_key, float(expires)) for k, app_key, expires in data.get("approvals", ())}


def _auth_mark(auth: Auth) -> tuple[Any, ...]:
    return (
        len(auth.app_keys),
        len(auth.tokens),
        len(auth.approvals),
        sum(a.last_issue or 0.0 for a in auth.app_keys.values()),
    )


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------- store


class Store:
    """Keeps one simulator's broker, auth and market clock in a data directory.

    Every method runs on the simulator's event loop, as the broker does; only the writing of a
    snapshot's bytes goes to a worker thread.
    """

    def __init__(self, data_dir: Path, broker: Broker, auth: Auth, clock: ScaledClock) -> None:
        self.dir = data_dir
        self.broker = broker
        self.auth = auth
        self.clock = clock
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        if not platform.lock_exclusive(self._lock_fd):
            os.close(self._lock_fd)
            raise StateError(f"another simulator is using {self.dir}")
        self._gen = 0  # the journal being appended to is journal-<gen>
        self._fd = -1
        self._journal_bytes = 0
        self._compact_at = COMPACT_MIN_BYTES
        # bumped by every snapshot written in place; a background one begun before is then dropped
        self._epoch = 0
        # the latest encoding of every record, by kind and key: what the next snapshot is made of
        self._frags: dict[str, dict[Any, bytes]] = {k: {} for k in KINDS}
        self._auth_frag = b"{}"
        self._open: dict[int, tuple[Order, tuple[Any, ...]]] = {}
        self._mark_all_written()

    # -------------------------------------------------------------------- marks

    def _mark_all_written(self) -> None:
        b = self.broker
        self._orders_list = b.orders
        self._n_orders = len(b.orders)
        self._n_fills = len(b.fills)
        self._n_accounts = len(b.accounts)
        self._auth_mark = _auth_mark(self.auth)
        self._clock_json()
        self._open = {o.seq: (o, _order_mark(o)) for o in b.orders if o.live}

    def _clock_moved(self) -> bool:
        """True when ``POST /sim/clock`` moved the market clock since the last record of it."""
        if self.clock.speed != self._clock_speed:
            return True
        expected = self._clock_at + (time.monotonic() - self._clock_mono) * self._clock_speed
        return abs(self.clock.now().timestamp() - expected) > 0.001

    def _clock_json(self) -> bytes:
        now = self.clock.now()
        self._clock_at, self._clock_mono, self._clock_speed = now.timestamp(), time.monotonic(), self.clock.speed
        return _dump({"at": now.isoformat(), "speed": self.clock.speed})

    # -------------------------------------------------------------------- journal

    def flush(self, also: Iterable[Order] = (), *, clock: bool = False) -> None:
        """Write what changed since the last flush to the journal; a no-op costs a few comparisons.

        ``also`` adds orders changed in ways the broker's lists do not show; ``clock`` records the
        market clock even when nothing else changed.
        """
        b = self.broker
        if b.orders is not self._orders_list:  # the broker was reset without reset() below
            self.compact()
            return
        orders, fills = b.orders, b.fills
        n_accounts = len(b.accounts)
        auth_mark = _auth_mark(self.auth)
        touched: dict[int, Order] = {o.seq: o for o in also}
        if (
            not touched
            and len(orders) == self._n_orders
            and len(fills) == self._n_fills
            and n_accounts == self._n_accounts
            and auth_mark == self._auth_mark
            and not clock
            and not self._clock_moved()
        ):
            return
        new_fills = fills[self._n_fills :]
        for o in orders[self._n_orders :]:
            touched[o.seq] = o
            if o.orgn_odno and (orig := b.find_order(o.trade_date, o.orgn_odno)) is not None:
                touched[orig.seq] = orig
        for f in new_fills:
            if (filled := b.find_order(f.trade_date, f.odno)) is not None:
                touched[filled.seq] = filled
        new_accounts = list(b.accounts)[self._n_accounts :] if n_accounts != self._n_accounts else []
        # the clock at most every FLUSH_INTERVAL_S (and whenever it was set): a restart resumes from
        # the last record of it, or from the latest order or fill if that is later
        moved = clock or self._clock_moved() or time.monotonic() - self._clock_mono >= FLUSH_INTERVAL_S
        members = [(b"clock", self._clock_json())] if moved else []
        if auth_mark != self._auth_mark:
            self._auth_frag = _dump(encode_auth(self.auth))
            members.append((b"auth", self._auth_frag))
        self._append(_assemble(members, self._encode(touched.values(), new_fills, new_accounts)))
        self._n_orders, self._n_fills, self._n_accounts = len(orders), len(fills), n_accounts
        self._auth_mark = auth_mark
        for o in touched.values():
            if o.live:
                self._open[o.seq] = (o, _order_mark(o))
            else:
                self._open.pop(o.seq, None)

    def _encode(
        self, orders: Iterable[Order], fills: Sequence[Fill], new_accounts: Iterable[str]
    ) -> dict[str, list[bytes]]:
        """Encode ``orders``, ``fills`` and everything they move (accounts, positions, day flows).

        Returns the new encodings by kind, and keeps each as its record's latest.
        """
        accounts = self.broker.accounts
        frags = self._frags
        out: dict[str, list[bytes]] = {k: [] for k in KINDS}
        keys = dict.fromkeys(new_accounts)
        positions: dict[tuple[str, str], None] = {}
        for o in orders:
            frag = frags["orders"][o.seq] = _dump(ORDER.row(o))
            out["orders"].append(frag)
            keys[o.account] = None
            positions[(o.account, o.symbol)] = None
        for f in fills:
            frag = frags["fills"][f.exec_seq] = _dump(FILL.row(f))
            out["fills"].append(frag)
        for key in keys:
            frag = frags["accounts"][key] = _dump(ACCOUNT.row(accounts[key]))
            out["accounts"].append(frag)
        for key, symbol in positions:
            if (pos := accounts[key].positions.get(symbol)) is not None:
                frag = frags["positions"][(key, symbol)] = _dump([key, POSITION.row(pos)])
                out["positions"].append(frag)
        for key, day in dict.fromkeys((f.account, trade_date(f.ts)) for f in fills):
            if (flows := accounts[key].flows.get(day)) is not None:
                frag = frags["flows"][(key, day)] = _dump([key, day.isoformat(), FLOWS.row(flows)])
                out["flows"].append(frag)
        return out

    def _append(self, line: bytes) -> None:
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        self._journal_bytes += len(line)

    def sweep(self) -> None:
        """Bring the market up to the clock and journal what it did to open orders on its own."""
        self.broker.tick(self.clock.now().timestamp())
        self.flush([o for o, mark in self._open.values() if _order_mark(o) != mark], clock=True)

    async def run(self) -> None:
        """Flush what background matching did, sweep, and take snapshots; until cancelled."""
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                if time.monotonic() - last_sweep >= SWEEP_INTERVAL_S:
                    last_sweep = time.monotonic()
                    self.sweep()
                else:
                    self.flush()
                if self._journal_bytes >= self._compact_at:
                    await self.compact_in_background()
            except Exception:
                log.exception("the simulator could not write its state")

    # -------------------------------------------------------------------- snapshot

    def _snapshot(self, gen: int) -> bytes:
        head = [
            (b"format", _dump(FORMAT)),
            (b"gen", _dump(gen)),
            (b"schema", _dump(SCHEMA)),
            (b"clock", self._clock_json()),
            (b"auth", self._auth_frag),
        ]
        return _assemble(head, {k: list(self._frags[k].values()) for k in KINDS})

    def _encode_all(self) -> None:
        """Encode every record afresh from the broker (after a restore or a reset)."""
        b = self.broker
        self._frags = {k: {} for k in KINDS}
        self._auth_frag = _dump(encode_auth(self.auth))
        positions = [(a.key, p.symbol) for a in b.accounts.values() for p in a.positions.values()]
        self._encode(b.orders, b.fills, list(b.accounts))
        frags = self._frags
        for key, symbol in positions:
            frags["positions"][(key, symbol)] = _dump([key, POSITION.row(b.accounts[key].positions[symbol])])
        for a in b.accounts.values():
            for day, flows in a.flows.items():
                frags["flows"][(a.key, day)] = _dump([a.key, day.isoformat(), FLOWS.row(flows)])

    def _start_journal(self, gen: int) -> None:
        """Append from now on to journal-<gen>, which continues the one before it."""
        fd = os.open(journal_path(self.dir, gen), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        old, self._fd, self._gen = self._fd, fd, gen
        if old >= 0:
            os.close(old)
        self._journal_bytes = 0

    def _install(self, tmp: Path, gen: int, size: int) -> None:
        """Make the written snapshot ``gen`` the current one and drop the journals it contains."""
        os.replace(tmp, self.dir / SNAPSHOT)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        for old in self.dir.glob("journal-*.jsonl"):
            with contextlib.suppress(ValueError, FileNotFoundError):
                if int(old.stem.removeprefix("journal-")) < gen:
                    old.unlink()
        self._compact_at = max(COMPACT_MIN_BYTES, COMPACT_RATIO * size)

    def compact(self) -> None:
        """Write a whole snapshot from the broker itself, here and now, and a new journal after it."""
        self._encode_all()
        gen = self._gen + 1
        data = self._snapshot(gen)
        self._start_journal(gen)
        tmp = self.dir / f"{SNAPSHOT}.{gen}.tmp"
        _write_synced(tmp, data)
        self._install(tmp, gen, len(data))
        self._epoch += 1
        self._mark_all_written()

    async def compact_in_background(self) -> None:
        """A snapshot of what the journal holds so far, written on a worker thread.

        The journal carries on in the next generation meanwhile, and a restart before the new
        snapshot is in place replays both generations on top of the old one.
        """
        self.flush()
        gen = self._gen + 1
        data = self._snapshot(gen)
        self._start_journal(gen)
        epoch = self._epoch
        tmp = self.dir / f"{SNAPSHOT}.{gen}.tmp"
        await asyncio.to_thread(_write_synced, tmp, data)
        if epoch != self._epoch:  # a reset or a shutdown wrote a newer snapshot meanwhile
            tmp.unlink(missing_ok=True)
            return
        self._install(tmp, gen, len(data))

    def reset(self) -> None:
        """After ``/sim/reset``: the emptied broker becomes the stored state at once."""
        self.compact()

    def close(self) -> None:
        """A clean shutdown: the exact clock and everything else in a fresh snapshot.

        The snapshot is encoded from the broker itself, so it needs no sweep first.
        """
        if self._fd < 0:
            return
        self.compact()
        os.close(self._fd)
        self._fd = -1
        os.close(self._lock_fd)

    # -------------------------------------------------------------------- restore

    def restore(self) -> bool:
        """Load the stored state into the broker, auth and clock; True if there was one.

        Always ends with a fresh snapshot, so the directory is compact and in this process's hands.
        """
        for tmp in self.dir.glob(f"{SNAPSHOT}.*.tmp"):
            tmp.unlink()
        found = load_image(self.dir)
        if found is not None:
            self._gen, image = found
            if image.clock is not None:
                self.clock.set(resume_at(image, image.clock), float(image.clock["speed"]))
            if image.auth is not None:
                restore_auth(self.auth, image, image.auth)
            rebuild(self.broker, image)
            reopen_books(self.broker, self.clock.now().timestamp())
        self.compact()
        return found is not None


def _assemble(head: list[tuple[bytes, bytes]], records: dict[str, list[bytes]]) -> bytes:
    """One JSON object from encoded members: the line of a batch, or a whole snapshot."""
    members = [b'"' + name + b'":' + value for name, value in head]
    members.extend(b'"' + kind.encode() + b'":[' + b",".join(frags) + b"]" for kind, frags in records.items() if frags)
    return b"{" + b",".join(members) + b"}\n"


def resume_at(image: Image, clock: Json) -> datetime:
    """Where the market clock resumes: where it was last recorded, never before what it had done.

    The clock is journaled at most every ``FLUSH_INTERVAL_S``, orders and fills with every change.
    """
    at = datetime.fromisoformat(clock["at"])
    received = image.schema["order"].index("received_at")
    filled = image.schema["fill"].index("ts")
    if image.orders:
        at = max(at, datetime.fromisoformat(image.orders[max(image.orders)][received]))
    if image.fills:
        at = max(at, datetime.fromisoformat(image.fills[max(image.fills)][filled]))
    return at


def rebuild(broker: Broker, image: Image) -> None:
    """Put the stored accounts, orders and fills into a freshly reset broker."""
    accounts: dict[str, Account] = {k: image.decode("account", row) for k, row in image.accounts.items()}
    for (key, symbol), row in image.positions.items():
        accounts[key].positions[symbol] = image.decode("position", row)
    for (key, day), row in image.flows.items():
        accounts[key].flows[date.fromisoformat(day)] = image.decode("flows", row)
    orders: list[Order] = [image.decode("order", image.orders[seq]) for seq in sorted(image.orders)]
    for o in orders:
        accounts[o.account].orders.append(o)
    broker.accounts = accounts
    broker.orders = orders
    broker.by_odno = {(o.trade_date, int(o.odno)): o for o in orders}
    broker.fills = [image.decode("fill", image.fills[n]) for n in sorted(image.fills)]
    # the broker's counters follow from its rows: the last order and the last execution
    # (Broker has no restore method of its own; these are the attributes its reset() sets)
    if orders:
        last = orders[-1]
        broker._seq, broker._odno_date, broker._odno_next = last.seq, last.trade_date, int(last.odno) + 1
    broker._exec_seq = broker.fills[-1].exec_seq if broker.fills else 0
    _recompute_reservations(broker)


def _recompute_reservations(broker: Broker) -> None:
    """Cash and shares tied up are what the open orders tie up.

    Derived rather than trusted, so that an order journaled as open and an account journaled
    after the order expired can never count the same reservation twice.
    """
    for acct in broker.accounts.values():
        acct.reserved = 0
        for pos in acct.positions.values():
            pos.sell_reserved = 0
    for o in broker.orders:
        acct = broker.accounts[o.account]
        acct.reserved += o.reserved_cash
        if o.side == "SELL" and o.live and (held := acct.positions.get(o.symbol)) is not None:
            held.sell_reserved += o.remaining


def reopen_books(broker: Broker, now: float) -> None:
    """Put every open order back into its symbol's book as it stands at ``now``.

    The symbol's state is built afresh at ``now`` (the market model needs no stored prices). An
    order of the regular session goes back where the session keeps it at that time: during the
    session into the book (or among the market orders waiting for liquidity) with the limit it
    was given; during a call auction, and in an after-the-close window to an order placed in that
    same window, ``submit`` files it, since where a phase keeps its orders is the market's business.
    Any other open order outlived its session while the simulator was down and expires, as it
    would have at the close. (A restart between 15:30 and a closing uncross that comes a few
    seconds later expires what was waiting for that uncross.)
    """
    for o in [o for o in broker.orders if o.live]:
        st = broker.state(o.symbol, now)
        phase, placed_in = st.phase(), phase_at(o.received_at)
        regular = placed_in in _REGULAR_SESSION
        if o.trade_date != st.trade_date:
            broker.on_expire(o, now)
        elif phase is Phase.CONTINUOUS and regular:
            if o.aggressive:
                st.takers.append(o)
            else:
                st._rest(o)  # the book's own insertion, so its ordering rule stays in market.py
        elif (phase in _REGULAR_SESSION and regular) or (phase is placed_in and phase is not Phase.CLOSED):
            st.submit(o, now)
        else:
            broker.on_expire(o, now)
        if o.live:
            broker.active.add(o.symbol)


class DurableNotices:
    """A notice sink that journals the state before any notice leaves: a notified fill is never lost."""

    def __init__(self, inner: NoticeSink, store: Store) -> None:
        self.inner = inner
        self.store = store

    def wants_notices(self, app_key: str) -> bool:
        return self.inner.wants_notices(app_key)

    def send_notice(self, app_key: str, fields: list[str]) -> None:
        self.store.flush()
        self.inner.send_notice(app_key, fields)
