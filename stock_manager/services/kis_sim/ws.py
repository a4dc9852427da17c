"""The KIS real-time WebSocket: sessions, registrations, data frames, notices, PINGPONG.

One session per app key (a second concurrent one is refused with OPSP8996), at most 41
registrations per session counting every TR.  The approval key is checked at the session's first
message only (KIS uses it once, when a session connects): an expired one gets OPSP0011 on a new
session, while a session opened with it keeps registering past its 24 hours.  Quote frames are
plain ``0|TR|NNN|…`` with several records in one frame when a symbol is busy; fill notices are
``1|H0STCNI0|001|<base64>`` encrypted with the key/iv of that subscription's ack.  The hub also
runs the market tick that moves streamed symbols and symbols with open orders forward in time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import secrets
import string
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.websockets import WebSocket, WebSocketDisconnect

from stock_manager.shared.clock import kst

from . import kis_format as fmt
from .market import Print, SymbolState
from .ws_protocol import SCOPE_KEY, ConnHandle

if TYPE_CHECKING:
    from .sim import Sim

log = logging.getLogger(__name__)

_TR_ID_RE = re.compile(r"^[A-Z0-9]{6,13}$")
MAX_RECORDS_PER_FRAME = 10
MAX_PENDING_RECORDS = 30
ASP_REFRESH_S = 1.0
# KIS says encrypt "Y" in these acks, and its sample client (kis_auth.py) decrypts only after a "Y"
ENCRYPTED_TRS = frozenset({"H0STCNI0", "H0STCNI9"})


@dataclass(slots=True)
class Subscription:
    tr_id: str
    tr_key: str
    key: str
    iv: str

    def encrypt(self, text: str) -> str:
        padder = padding.PKCS7(128).padder()
        data = padder.update(text.encode()) + padder.finalize()
        enc = Cipher(algorithms.AES(self.key.encode()), modes.CBC(self.iv.encode())).encryptor()
        return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def _new_subscription(tr_id: str, tr_key: str) -> Subscription:
    key = "".join(secrets.choice(string.ascii_lowercase) for _ in range(32))
    return Subscription(tr_id, tr_key, key, secrets.token_hex(8))


class Session:
    def __init__(self, websocket: WebSocket) -> None:
        self.ws = websocket
        self.app_key: str | None = None
        self.subs: dict[tuple[str, str], Subscription] = {}
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.last_answer = time.monotonic()
        self.closed = False
        self.finishing = False
        conn = websocket.scope.get(SCOPE_KEY)
        self.conn: ConnHandle | None = conn if isinstance(conn, ConnHandle) else None

    def send(self, text: str) -> None:
        if not self.closed:
            self.queue.put_nowait(text)

    def finish(self) -> None:
        """Close after what is queued has been sent (a refused session gets its error first)."""
        if not self.closed:
            self.queue.put_nowait(None)
            self.closed = True
            self.finishing = True

    def abort(self) -> None:
        """Drop the connection at once, as a network failure would."""
        self.closed = True
        if self.conn is not None:
            self.conn.abort()
        else:
            self.queue.put_nowait(None)

    def alive_since(self) -> float:
        pong = self.conn.last_pong if self.conn is not None else 0.0
        return max(self.last_answer, pong)


def _control(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str, sub: Subscription | None = None) -> str:
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if sub is not None:
        body["output"] = {"iv": sub.iv, "key": sub.key}
    encrypt = "Y" if sub is not None and tr_id in ENCRYPTED_TRS else "N"
    return json.dumps(
        {"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": encrypt}, "body": body},
        ensure_ascii=False,
    )


class Hub:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.sessions: set[Session] = set()
        self.by_app: dict[str, Session] = {}
        self.cnt_watch: dict[str, set[Session]] = {}
        self.asp_watch: dict[str, set[Session]] = {}
        self.pending: dict[str, deque[list[str]]] = {}
        self.asp_last: dict[str, float] = {}
        self.asp_books = fmt.BookChanges()  # what the last H0STASP0 frame showed, per symbol
        # per symbol in a VI: when its last indicative H0STCNT0 frame went out, and its (price, volume)
        self.vi_sent: dict[str, tuple[float, tuple[int, int]]] = {}
        self._last_drop = time.monotonic()
        self.cni_tr = "H0STCNI0" if sim.config.env == "real" else "H0STCNI9"

    # ------------------------------------------------------------------ NoticeSink

    def _cni(self, app_key: str) -> tuple[Session, Subscription] | None:
        s = self.by_app.get(app_key)
        if s is None or s.closed:
            return None
        for sub in s.subs.values():
            if sub.tr_id == self.cni_tr:
                return s, sub
        return None

    def wants_notices(self, app_key: str) -> bool:
        return self._cni(app_key) is not None

    def send_notice(self, app_key: str, fields: list[str]) -> None:
        found = self._cni(app_key)
        if found is None:
            return
        s, sub = found
        faults, dice = self.sim.faults, self.sim.dice
        if dice.hit(faults.notice_drop_rate):
            return
        fields[0] = sub.tr_key
        frame = f"1|{sub.tr_id}|001|{sub.encrypt('^'.join(fields))}"
        s.send(frame)
        if dice.hit(faults.duplicate_notice_rate):
            s.send(frame)

    def faults_changed(self) -> None:
        self._last_drop = time.monotonic()

    # ------------------------------------------------------------------ sessions

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        session = Session(websocket)
        self.sessions.add(session)
        writer = asyncio.create_task(self._writer(session))
        try:
            while not session.closed:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode(errors="replace")
                self._on_message(session, text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._forget(session)
            if not session.finishing:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(writer, 5.0)

    async def _writer(self, session: Session) -> None:
        ws = session.ws
        try:
            while True:
                item = await session.queue.get()
                if item is None:
                    await ws.close()
                    return
                await ws.send_text(item)
        except Exception:  # the peer is gone; the reader cleans up
            session.closed = True

    def _forget(self, s: Session) -> None:
        s.closed = True
        self.sessions.discard(s)
        if s.app_key is not None and self.by_app.get(s.app_key) is s:
            del self.by_app[s.app_key]
        for tr_id, tr_key in list(s.subs):
            self._unwatch(s, tr_id, tr_key)
        s.subs.clear()

    def _on_message(self, s: Session, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            s.send(_control("", "", "9", "OPSP9999", "JSON PARSING ERROR : invalid json format"))
            return
        header = data.get("header") if isinstance(data, dict) else None
        if not isinstance(header, dict):
            s.send(_control("", "", "9", "OPSP9999", "JSON PARSING ERROR : header not found"))
            return
        if header.get("tr_id") == "PINGPONG":
            s.last_answer = time.monotonic()
            return
        body = data.get("body")
        inp = body.get("input") if isinstance(body, dict) else None
        if not isinstance(inp, dict):
            s.send(_control("", "", "9", "OPSP9999", "JSON PARSING ERROR : input not found"))
            return
        tr_id, tr_key = str(inp.get("tr_id", "")), str(inp.get("tr_key", ""))
        if s.app_key is None:
            # KIS uses the approval key once, when the session connects: its 24 hours bound new
            # sessions, not what a session already open registers later
            app = self.sim.auth.app_for_approval(str(header.get("approval_key", "")))
            if app is None:
                s.send(_control(tr_id, tr_key, "9", "OPSP0011", "invalid approval : NOT FOUND"))
                return
            other = self.by_app.get(app)
            if other is not None and other is not s and not other.closed:
                # one session per app key: the newcomer is refused, the first one keeps running
                s.send(_control(tr_id, tr_key, "1", "OPSP8996", "ALREADY IN USE appkey"))
                s.finish()
                return
            s.app_key = app
            self.by_app[app] = s
        if not _TR_ID_RE.match(tr_id) or not tr_key:
            s.send(_control(tr_id, tr_key, "9", "OPSP9999", "JSON PARSING ERROR : invalid tr_id or tr_key"))
            return
        tr_type = str(header.get("tr_type", ""))
        if tr_type == "1":
            self._subscribe(s, tr_id, tr_key)
        elif tr_type == "2":
            self._unsubscribe(s, tr_id, tr_key)
        else:
            s.send(_control(tr_id, tr_key, "9", "OPSP9999", "JSON PARSING ERROR : invalid tr_type"))

    def _subscribe(self, s: Session, tr_id: str, tr_key: str) -> None:
        existing = s.subs.get((tr_id, tr_key))
        if existing is not None:
            s.send(_control(tr_id, tr_key, "1", "OPSP0002", "ALREADY IN SUBSCRIBE", existing))
            return
        if len(s.subs) >= self.sim.config.ws_max_registrations:
            s.send(_control(tr_id, tr_key, "1", "OPSP0008", "MAX SUBSCRIBE OVER"))
            return
        sub = _new_subscription(tr_id, tr_key)
        s.subs[(tr_id, tr_key)] = sub
        if tr_key in self.sim.broker.universe:
            if tr_id == "H0STCNT0":
                self.cnt_watch.setdefault(tr_key, set()).add(s)
            elif tr_id == "H0STASP0":
                self.asp_watch.setdefault(tr_key, set()).add(s)
        s.send(_control(tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS", sub))

    def _unsubscribe(self, s: Session, tr_id: str, tr_key: str) -> None:
        if s.subs.pop((tr_id, tr_key), None) is None:
            s.send(_control(tr_id, tr_key, "1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)"))
            return
        self._unwatch(s, tr_id, tr_key)
        s.send(_control(tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS"))

    def _unwatch(self, s: Session, tr_id: str, tr_key: str) -> None:
        watch = self.cnt_watch if tr_id == "H0STCNT0" else self.asp_watch if tr_id == "H0STASP0" else None
        if watch is None or tr_key not in watch:
            return
        watch[tr_key].discard(s)
        if not watch[tr_key]:
            del watch[tr_key]
            if tr_id == "H0STCNT0":
                st = self.sim.broker.states.get(tr_key)
                if st is not None:
                    st.print_hook = None
                self.pending.pop(tr_key, None)

    # ------------------------------------------------------------------ market tick

    def _on_print(self, st: SymbolState, p: Print) -> None:
        queue = self.pending.get(st.sym.code)
        if queue is None:
            queue = self.pending[st.sym.code] = deque(maxlen=MAX_PENDING_RECORDS)
        queue.append(fmt.cnt_record(st, p))

    def tick(self) -> None:
        broker = self.sim.broker
        now = broker.now_ts()
        for code in list(self.cnt_watch):
            st = broker.state(code, now)
            # hooked only after the first catch-up, so a new subscriber gets no burst of old prints
            if st.print_hook is None:
                st.print_hook = self._on_print
        for code in list(self.asp_watch):
            broker.state(code, now)
        broker.tick(now)
        for code, records in self.pending.items():
            watchers = self.cnt_watch.get(code)
            if not watchers or not records:
                continue
            rows = list(records)
            for i in range(0, len(rows), MAX_RECORDS_PER_FRAME):
                chunk = rows[i : i + MAX_RECORDS_PER_FRAME]
                frame = f"0|H0STCNT0|{len(chunk):03d}|" + "^".join(f for r in chunk for f in r)
                for s in watchers:
                    s.send(frame)
        self.pending.clear()
        wall = time.monotonic()
        self._send_vi_indications(wall)
        n_fields = self.sim.config.asking_price_fields
        for code, watchers in self.asp_watch.items():
            book = broker.states.get(code)
            if book is None or not (book.book_dirty or wall - self.asp_last.get(code, 0.0) >= ASP_REFRESH_S):
                continue
            book.book_dirty = False
            self.asp_last[code] = wall
            frame = "0|H0STASP0|001|" + "^".join(fmt.asp_record(book, n_fields, self.asp_books))
            for s in watchers:
                s.send(frame)

    def _send_vi_indications(self, wall: float) -> None:
        """During a VI no trade prints: H0STCNT0 carries the indicative price instead (HOUR_CLS_CODE
        ``C``), when it changes and at least every ``ASP_REFRESH_S``."""
        for code, watchers in self.cnt_watch.items():
            st = self.sim.broker.states.get(code)
            cross = st.indicative() if st is not None and st.vi is not None else None
            if st is None or cross is None:
                self.vi_sent.pop(code, None)
                continue
            shown = (cross.price, cross.volume)
            sent = self.vi_sent.get(code)
            if sent is not None and sent[1] == shown and wall - sent[0] < ASP_REFRESH_S:
                continue
            self.vi_sent[code] = (wall, shown)
            frame = "0|H0STCNT0|001|" + "^".join(fmt.cnt_indicative(st, cross))
            for s in watchers:
                s.send(frame)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.sim.config.tick_interval_s)
            try:
                self.tick()
            except Exception:
                log.exception("market tick failed")

    async def _pinger(self) -> None:
        cfg = self.sim.config
        while True:
            await asyncio.sleep(cfg.pingpong_interval_s)
            wall = time.monotonic()
            stamp = kst(self.sim.clock.now()).strftime("%Y%m%d%H%M%S")
            text = json.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}})
            for s in list(self.sessions):
                if wall - s.alive_since() > cfg.pingpong_timeout_s:
                    s.abort()
                else:
                    s.send(text)

    async def _dropper(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            every = self.sim.faults.ws_drop_every_s
            if every and time.monotonic() - self._last_drop >= every:
                self._last_drop = time.monotonic()
                for s in list(self.sessions):
                    s.abort()

    async def run(self) -> None:
        await asyncio.gather(self._ticker(), self._pinger(), self._dropper())
