"""A lean HTTP/1.1 keep-alive transport for the KIS REST client.

httpx stays the client API (requests, responses, timeouts, errors); this replaces only what sits
under it, httpcore and anyio, which profiles showed spending more CPU per order than everything
else in Execution together.  Each connection is an asyncio protocol whose responses are parsed by
``httptools`` (llhttp, the parser uvicorn uses), one request at a time, kept alive between them.

What an order's safety rests on is kept exactly as httpx defines it, because ``KisRestClient``
decides from the exception type whether an order may have left:

* ``httpx.PoolTimeout``, ``httpx.ConnectTimeout``, ``httpx.ConnectError``: raised before a single
  byte of the request was written (an idle connection found closed is dropped *before* writing);
* ``httpx.WriteError``, ``httpx.ReadTimeout``, ``httpx.ReadError``, ``httpx.RemoteProtocolError``:
  the request may have reached the server; the connection is discarded, never reused.

Timeouts come from the request (``request.extensions["timeout"]``, as httpx sets them): ``pool``
for a free connection, ``connect`` for TCP (and TLS), ``read`` for the whole answer.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any, Final, cast

import httptools
import httpx

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MAX_BODY: Final = 64 * 1024 * 1024


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._parser: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._received = False
        self._complete = False
        self._keep_alive = False
        self._error: Exception | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._complete:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {e}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and not self._complete:
            if self._received:
                self._fail(httpx.ReadError("connection lost while reading the response"))
            else:
                self._fail(httpx.RemoteProtocolError("server disconnected without sending a response"))

    # --- httptools callbacks ----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > _MAX_BODY:
            self._fail(httpx.RemoteProtocolError("response body too large"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        # read here: once the callback returns the parser resets for the next message
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()
        self._complete = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- use ----------------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def _fail(self, error: Exception) -> None:
        self._error = error
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def round_trip(self, data: bytes, read_s: float | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._size = [], [], 0
        self._received = self._complete = self._keep_alive = False
        self._error = None
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            try:
                self.transport.write(data)
            except (OSError, RuntimeError) as e:
                raise httpx.WriteError(f"writing the request failed: {type(e).__name__}") from None
            try:
                async with asyncio.timeout(read_s):
                    await waiter
            except TimeoutError:
                raise httpx.ReadTimeout("no complete response within the read timeout") from None
            if self._error is not None and not self._complete:
                raise self._error
            if not self._keep_alive:
                self.close()
            return self._status, self._headers, b"".join(self._body)
        except BaseException:
            self.close()  # whatever happened mid-request, this connection's state is unknown
            raise
        finally:
            self._parser = None
            self._waiter = None
            self.idle_since = time.monotonic()


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """At most ``max_connections`` kept-alive connections per transport (all origins together)."""

    def __init__(
        self,
        *,
        max_connections: int = 8,
        keepalive_expiry: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("transport closed")
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        data = _serialize(request, body)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection within the pool timeout") from None
        try:
            conn = self._take_idle(origin) or await self._connect(origin, timeouts.get("connect"))
            status, headers, content = await conn.round_trip(data, timeouts.get("read"))
            if conn.usable and not self._closed:
                self._idle.setdefault(origin, deque()).append(conn)
            else:
                conn.close()
        finally:
            self._slots.release()
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            if conn.usable and now - conn.idle_since < self._expiry:
                return conn
            conn.close()  # closed by the server or idle too long: dropped before writing anything
        return None

    async def _connect(self, origin: tuple[str, str, int], connect_s: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        ctx = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(connect_s):
                _, conn = await loop.create_connection(_Connection, host, port, ssl=ctx,
                                                       server_hostname=host if ctx else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within the connect timeout") from None
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(f"connecting to {host}:{port} failed: {type(e).__name__}") from None
        return conn

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)
