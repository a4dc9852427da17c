"""The KIS WebSocket session: one per app key, kept alive, resubscribed, decoded into events.

KIS allows one session per app key and 41 registrations on it, and may block an IP or key that
connects-and-closes or subscribes-and-unsubscribes in a loop.  So the client keeps a *desired*
subscription set and only ever sends the difference between it and what the server has
acknowledged; a refused registration (e.g. OPSP0008 MAX SUBSCRIBE OVER) is remembered and not
retried until the desired set changes or the session is re-established; reconnects back off
exponentially with jitter and never start closer together than ``min_interval``.

Consumers read one stream of events: parsed records (trades, order books, fill notices) and status
changes (connected, disconnected, subscribed, refused, malformed frame).  The HTS ID (the fill
notice key) and the approval key never appear in events; malformed frames are reported with
those values masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol, cast

from loguru import logger
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from stock_manager.shared.kis import endpoints as ep
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.errors import KisError, KisParseError
from stock_manager.shared.kis.models import ApprovalKey
from stock_manager.shared.kis.ws_frames import (
    OPSP_ALREADY_SUBSCRIBED,
    OPSP_INVALID_APPROVAL,
    OPSP_NOT_SUBSCRIBED,
    ControlMessage,
    DataFrame,
    ExecutionNotice,
    OrderBook,
    PingPong,
    RawRecord,
    Trade,
    decode_frame,
    parse_message,
    subscribe_message,
    unsubscribe_message,
)

# websockets logs every frame at DEBUG, and subscribe frames carry the approval key and the HTS
# ID; this logger is ours and never goes below INFO.
_WIRE_LOGGER: Final = logging.getLogger("stock_manager.shared.kis.ws.wire")
_WIRE_LOGGER.setLevel(logging.INFO)

# Stands for the HTS ID in a Subscription, so the secret itself never sits in a shared value.
NOTICE_KEY: Final = "<hts-id>"


@dataclass(frozen=True, slots=True, order=True)
class Subscription:
    tr_id: str
    tr_key: str

    @classmethod
    def trades(cls, code: str) -> Subscription:
        return cls(ep.WS_TRADE_TR, code)

    @classmethod
    def orderbook(cls, code: str) -> Subscription:
        return cls(ep.WS_ORDERBOOK_TR, code)

    @classmethod
    def notices(cls, env: KisEnv) -> Subscription:
        """The account's order/fill notices; the client fills in the HTS ID when sending."""
        return cls(ep.WS_NOTICE_TR[env], NOTICE_KEY)


# --- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    session: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class SubscriptionFailed:
    """The server refused a registration; it is not retried until the desired set changes."""

    subscription: Subscription
    msg_cd: str
    msg1: str


@dataclass(frozen=True, slots=True)
class ControlError:
    """An error control message that belongs to no pending request (e.g. OPSP8996 session in use)."""

    tr_id: str
    msg_cd: str
    msg1: str


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    raw: str
    reason: str


StatusEvent = Connected | Disconnected | Subscribed | Unsubscribed | SubscriptionFailed | ControlError | MalformedFrame
WsEvent = Trade | OrderBook | ExecutionNotice | RawRecord | StatusEvent


class TooManySubscriptions(ValueError):
    """The desired set exceeds what one KIS session may register."""


class ApprovalSource(Protocol):
    """Where approval keys come from (``KisRestClient`` satisfies this)."""

    async def approval_key(self) -> ApprovalKey: ...


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    multiplier: float = 2.0
    jitter: float = 0.2
    # No two connection attempts start closer together than this (KIS blocks connect loops).
    min_interval: float = 5.0
    # A session that lived this long resets the back-off.
    stable_after: float = 60.0


class _State(Enum):
    SUB_PENDING = "sub_pending"
    SUBSCRIBED = "subscribed"
    UNSUB_PENDING = "unsub_pending"
    FAILED = "failed"


_COUNTED: Final = frozenset({_State.SUB_PENDING, _State.SUBSCRIBED, _State.UNSUB_PENDING})
_CLOSED: Final = object()


class KisWebSocketClient:
    """``async with KisWebSocketClient(...) as ws: ws.replace([...]); async for ev in ws.events()``."""

    def __init__(
        self,
        approvals: ApprovalSource,
        *,
        env: KisEnv,
        url: str | None = None,
        hts_id: SecretStr | None = None,
        custtype: str = "P",
        max_registrations: int = ep.MAX_WS_REGISTRATIONS,
        reconnect: ReconnectPolicy | None = None,
        idle_timeout: float | None = None,
        open_timeout: float = 10.0,
        subscribe_pause: float = 0.0,
        approval_max_age: float = 12 * 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._approvals = approvals
        self._env = env
        self._url = url or ep.WS_URL[env]
        self._hts_id = hts_id
        self._custtype = custtype
        self._max = max_registrations
        self._policy = reconnect or ReconnectPolicy()
        self._idle_timeout = idle_timeout
        self._open_timeout = open_timeout
        self._subscribe_pause = subscribe_pause
        self._approval_max_age = approval_max_age
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng

        self._desired: frozenset[Subscription] = frozenset()
        self._active: dict[Subscription, _State] = {}
        self._aes: dict[str, tuple[str, str]] = {}
        self._approval: tuple[ApprovalKey, float] | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._conn: ClientConnection | None = None
        self._closing = False
        self._sessions = 0
        self._acked = False
        self.last_message_at: float | None = None

    def __repr__(self) -> str:
        return f"KisWebSocketClient(env={self._env.value}, url={self._url}, desired={len(self._desired)})"

    # --- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> KisWebSocketClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kis-ws")

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._queue.put_nowait(_CLOSED)

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # --- desired subscriptions ----------------------------------------------------------------------

    @property
    def desired(self) -> frozenset[Subscription]:
        return self._desired

    @property
    def active(self) -> frozenset[Subscription]:
        """Registrations the server has acknowledged on the current session."""
        return frozenset(s for s, st in self._active.items() if st is _State.SUBSCRIBED)

    @property
    def failed(self) -> frozenset[Subscription]:
        """Registrations the server refused on the current session (not retried by themselves)."""
        return frozenset(s for s, st in self._active.items() if st is _State.FAILED)

    def retry_failed(self) -> None:
        """Ask once more for every refused registration still desired.

        Never called by the client itself: re-sending a refused registration on a timer is the
        subscribe loop KIS blocks keys for.
        """
        for sub in self.failed:
            del self._active[sub]
        self._wake.set()

    def subscribe(self, *subs: Subscription) -> None:
        self.replace(self._desired | set(subs))

    def unsubscribe(self, *subs: Subscription) -> None:
        self.replace(self._desired - set(subs))

    def replace(self, subs: Iterable[Subscription]) -> None:
        """Make ``subs`` the desired set; only the difference is sent, once."""
        new = frozenset(subs)
        if len(new) > self._max:
            raise TooManySubscriptions(f"{len(new)} subscriptions; a KIS session allows {self._max}")
        if any(s.tr_key == NOTICE_KEY for s in new) and self._hts_id is None:
            raise ValueError("fill notices need the HTS ID (KIS_HTS_ID)")
        if new != self._desired:
            self._desired = new
            self._wake.set()

    # --- events -------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[WsEvent]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            yield cast(WsEvent, item)

    def _emit(self, event: WsEvent) -> None:
        self._queue.put_nowait(event)

    def _scrub(self, text: str) -> str:
        secrets = []
        if self._hts_id is not None:
            secrets.append(self._hts_id.get_secret_value())
        if self._approval is not None:
            secrets.append(self._approval[0].value.get_secret_value())
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    # --- connection loop ----------------------------------------------------------------------------

    async def _approval_key(self) -> ApprovalKey:
        now = self._monotonic()
        if self._approval is None or now - self._approval[1] > self._approval_max_age:
            self._approval = (await self._approvals.approval_key(), now)
        return self._approval[0]

    def _backoff(self, delay: float) -> float:
        jitter = self._policy.jitter
        return max(0.0, delay * (1.0 + jitter * (2.0 * self._rng() - 1.0)))

    async def _run(self) -> None:
        delay = self._policy.initial
        last_start: float | None = None
        while not self._closing:
            if last_start is not None:
                since = self._monotonic() - last_start
                if since < self._policy.min_interval:
                    await self._sleep(self._policy.min_interval - since)
            last_start = self._monotonic()
            connected_at: float | None = None
            reason = "closed by server"
            try:
                approval = await self._approval_key()
                async with connect(
                    self._url,
                    ping_interval=None,
                    open_timeout=self._open_timeout,
                    close_timeout=2.0,
                    logger=_WIRE_LOGGER,
                ) as conn:
                    connected_at = self._monotonic()
                    self._sessions += 1
                    self._conn = conn
                    self._active.clear()
                    self._aes.clear()
                    self._acked = False
                    logger.info("kis ws connected (session {})", self._sessions)
                    self._emit(Connected(self._sessions))
                    reason = await self._session(conn, approval)
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                reason = f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            except (OSError, TimeoutError, WebSocketException, KisError) as exc:
                reason = type(exc).__name__
            except Exception as exc:
                # The loop must outlive any bug below it.  No traceback: its locals hold keys.
                reason = f"unexpected {type(exc).__name__}"
                logger.error("kis ws session failed: {}", self._scrub(str(exc)))
            finally:
                self._conn = None
                self._active.clear()
            if connected_at is not None and not self._acked and self._desired:
                # Not one registration accepted: the approval key may be the problem.
                self._approval = None
            if self._closing:
                break
            if connected_at is not None and self._monotonic() - connected_at >= self._policy.stable_after:
                delay = self._policy.initial
            wait = self._backoff(delay)
            delay = min(delay * self._policy.multiplier, self._policy.maximum)
            logger.warning("kis ws disconnected: {}; reconnecting in {:.1f}s", reason, wait)
            self._emit(Disconnected(reason, wait))
            await self._sleep(wait)

    async def _session(self, conn: ClientConnection, approval: ApprovalKey) -> str:
        reader = asyncio.create_task(self._reader(conn), name="kis-ws-read")
        syncer = asyncio.create_task(self._syncer(conn, approval), name="kis-ws-sync")
        try:
            done, _ = await asyncio.wait({reader, syncer}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                return reader.result()
            failure = syncer.exception()
            if failure is None:
                return await reader  # the connection closed under the syncer; the reader says why
            # A session whose subscriptions can no longer be kept in sync is worth replacing.
            await conn.close()
            return f"subscription sync failed ({type(failure).__name__})"
        finally:
            for task in (reader, syncer):
                task.cancel()
            await asyncio.gather(reader, syncer, return_exceptions=True)

    async def _reader(self, conn: ClientConnection) -> str:
        while True:
            try:
                if self._idle_timeout is None:
                    message = await conn.recv()
                else:
                    async with asyncio.timeout(self._idle_timeout):
                        message = await conn.recv()
            except TimeoutError:
                await conn.close()
                return f"no message for {self._idle_timeout:.0f}s"
            except ConnectionClosed as exc:
                return f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            self.last_message_at = self._monotonic()
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
            await self._handle(conn, text)

    async def _send(self, conn: ClientConnection, text: str) -> None:
        async with self._send_lock:
            await conn.send(text)

    async def _handle(self, conn: ClientConnection, text: str) -> None:
        try:
            message = parse_message(text)
        except KisParseError as exc:
            self._emit(MalformedFrame(self._scrub(text), str(exc)))
            return
        if isinstance(message, PingPong):
            # The server drops sessions that do not echo its heartbeat.
            with contextlib.suppress(ConnectionClosed):
                await self._send(conn, message.raw)
            return
        if isinstance(message, ControlMessage):
            self._on_control(message)
            if message.msg_cd == OPSP_INVALID_APPROVAL:
                # KIS reads the approval key when a session connects, so this session is of no use.
                # The key may be past its 24 hours though young by our clock (a suspended host, a
                # clock that moved): reconnect with a new one.
                self._approval = None
                await conn.close()
            return
        assert isinstance(message, DataFrame)
        try:
            records = decode_frame(message, self._aes)
        except (ValueError, IndexError) as exc:
            # For notices ``text`` is the ciphertext: the decrypted secrets are never reported.
            reason = str(exc) if isinstance(exc, KisParseError) else f"unparseable ({type(exc).__name__})"
            self._emit(MalformedFrame(self._scrub(text), reason))
            return
        for record in records:
            self._emit(record)

    # --- subscription bookkeeping -------------------------------------------------------------------

    def _match(self, msg: ControlMessage) -> Subscription | None:
        if msg.tr_id in ep.WS_NOTICE_TRS:
            return Subscription(msg.tr_id, NOTICE_KEY)
        if msg.tr_key:
            return Subscription(msg.tr_id, msg.tr_key)
        # An error ack without a key: blame the oldest registration still waiting for an answer.
        for sub, state in self._active.items():
            if state in (_State.SUB_PENDING, _State.UNSUB_PENDING) and (not msg.tr_id or sub.tr_id == msg.tr_id):
                return sub
        return None

    def _on_control(self, msg: ControlMessage) -> None:
        sub = self._match(msg)
        state = self._active.get(sub) if sub is not None else None
        if msg.ok or msg.msg_cd in (OPSP_ALREADY_SUBSCRIBED, OPSP_NOT_SUBSCRIBED):
            self._acked = True
            if msg.aes_key is not None and msg.aes_iv is not None:
                self._aes[msg.tr_id] = (msg.aes_key.get_secret_value(), msg.aes_iv.get_secret_value())
            if sub is None:
                logger.debug("kis ws: ack for nothing we track ({} {})", msg.tr_id, msg.msg_cd)
            elif msg.msg_cd == OPSP_NOT_SUBSCRIBED or msg.is_unsubscribe_ack or state is _State.UNSUB_PENDING:
                self._active.pop(sub, None)
                self._emit(Unsubscribed(sub))
            else:
                self._active[sub] = _State.SUBSCRIBED
                self._emit(Subscribed(sub))
        elif sub is not None and state is _State.SUB_PENDING:
            self._active[sub] = _State.FAILED
            logger.warning("kis ws: {} {} refused: {} {}", sub.tr_id, sub.tr_key, msg.msg_cd, msg.msg1)
            self._emit(SubscriptionFailed(sub, msg.msg_cd, msg.msg1))
        elif sub is not None and state is _State.UNSUB_PENDING:
            # Refused to unsubscribe: the registration is most likely gone or never was.
            self._active.pop(sub, None)
            self._emit(Unsubscribed(sub))
        else:
            logger.warning("kis ws control error {} {} {}", msg.tr_id, msg.msg_cd, msg.msg1)
            self._emit(ControlError(msg.tr_id, msg.msg_cd, msg.msg1))
        self._wake.set()

    def _wire_key(self, sub: Subscription) -> str:
        if sub.tr_key == NOTICE_KEY:
            assert self._hts_id is not None
            return self._hts_id.get_secret_value()
        return sub.tr_key

    async def _syncer(self, conn: ClientConnection, approval: ApprovalKey) -> None:
        try:
            while True:
                self._wake.clear()
                await self._apply(conn, approval)
                await self._wake.wait()
        except ConnectionClosed:
            return

    async def _apply(self, conn: ClientConnection, approval: ApprovalKey) -> None:
        """Send the difference between desired and active, unsubscribes first to free slots."""
        desired = self._desired
        for sub, state in list(self._active.items()):
            if sub in desired:
                continue
            if state is _State.SUBSCRIBED:
                self._active[sub] = _State.UNSUB_PENDING
                await self._send(conn, unsubscribe_message(approval.value, sub.tr_id, self._wire_key(sub)))
            elif state is _State.FAILED:
                del self._active[sub]
        for sub in sorted(desired):
            if sub in self._active:
                continue
            if sum(1 for st in self._active.values() if st in _COUNTED) >= self._max:
                return  # the next ack frees a slot and wakes us
            self._active[sub] = _State.SUB_PENDING
            await self._send(
                conn, subscribe_message(approval.value, sub.tr_id, self._wire_key(sub), custtype=self._custtype)
            )
            if self._subscribe_pause:
                await self._sleep(self._subscribe_pause)
