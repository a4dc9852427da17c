"""httpx's standard transport (httpcore) against real sockets: reuse, framing, and the exception
types on which an order's safety rests.

``KisRestClient`` decides from the exception alone whether an order may have left: ``ConnectError``,
``ConnectTimeout`` and ``PoolTimeout`` are raised before a byte of the request is written ("not
sent": the order may be sent again at once); ``ReadTimeout``, ``ReadError``, ``WriteError`` and
``RemoteProtocolError`` may follow a request that reached the server ("maybe sent": only the
broker's order list can tell).  Each scenario is run twice: on the transport itself, for the type,
and through ``KisRestClient.order_cash``, for the verdict an order gets (``TransportError`` with
``sent=False`` or ``OutcomeUnknown``).  Both event loops, since the services run on uvloop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from stock_manager.shared.kis.endpoints import ORDER_CASH_PATH, KisEnv
from stock_manager.shared.kis.errors import OutcomeUnknown, TransportError
from stock_manager.shared.kis.models import Side
from stock_manager.shared.kis.pg_ports import UnlimitedRateLimiter
from stock_manager.shared.kis.ports import CachedToken, InMemoryTokenStore
from stock_manager.shared.kis.rest import NOT_SENT, KisCredentials, KisRestClient, KisRestSettings, RetryPolicy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

ACK = (b'{"rt_cd":"0","msg_cd":"APBK0013","msg1":"ok","output":{"KRX_FWDG_ORD_ORGNO":"06010",'
       b'"ODNO":"0000012345","ORD_TMD":"091500"}}')


def response(body: bytes = b'{"rt_cd":"0"}', *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n".encode()
            + extra + b"\r\n" + body)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One request's head and body, or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length) if length else b""


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0


@asynccontextmanager
async def serve(handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    state = Server()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client gone, or the test over (3.11 logs a cancelled client task as an error)
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=ssl_ctx)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


def answering(state_box: list[Server], reply: Callable[[bytes, bytes], bytes] | None = None) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (req := await read_request(reader)) is not None:
            state_box[0].requests.append(req)
            writer.write(reply(*req) if reply else response())
            await writer.drain()

    return handler


def transport(max_connections: int = 4, keepalive_expiry: float = 10.0,
              verify: ssl.SSLContext | bool = True) -> httpx.AsyncHTTPTransport:
    """What ``KisRestClient`` builds: httpx's own transport, no retries of its own."""
    return httpx.AsyncHTTPTransport(
        verify=verify, retries=0,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                            keepalive_expiry=keepalive_expiry))


def order_client(port: int, *, read_timeout: float = 5.0, pool: int = 4) -> KisRestClient:
    """A KIS client on the test server, with a valid token cached and no waiting between retries."""
    creds = KisCredentials.of("PSkeyTRANSPORTtest0123456789abcdef", "secret-" + "x" * 40, "12345678-01")
    store = InMemoryTokenStore()
    key_id = creds.key_id(KisEnv.REAL)
    now = dt.datetime.now(dt.UTC)
    store.tokens[key_id] = CachedToken(key_id, SecretStr("token-abc"), now + dt.timedelta(hours=20), now)
    settings = KisRestSettings(env=KisEnv.REAL, base_url=f"http://127.0.0.1:{port}", order_read_timeout=read_timeout,
                               max_connections=pool, retry=RetryPolicy(jitter=0.0))

    async def no_wait(_: float) -> None:
        return None

    return KisRestClient(settings, creds, store, UnlimitedRateLimiter(), sleep=no_wait)


async def order(client: KisRestClient) -> object:
    return await client.order_cash(Side.BUY, "005930", 1, "00", 70_000)


# --- what works ------------------------------------------------------------------------------------


async def scenario_requests_reuse_one_kept_alive_connection(tmp: Path) -> None:
    box: list[Server] = []
    async with serve(answering(box)) as srv:
        box.append(srv)
        async with httpx.AsyncClient(transport=transport(), base_url=f"http://127.0.0.1:{srv.port}") as client:
            for i in range(5):
                r = await client.post("/uapi/x", params={"a": str(i)}, content=b'{"k":1}',
                                      headers={"tr_id": "TTTC0012U"})
                assert r.status_code == 200 and r.json() == {"rt_cd": "0"}
        assert srv.connections == 1
        head, body = srv.requests[-1]
        assert head.startswith(b"POST /uapi/x?a=4 HTTP/1.1\r\n")
        assert b"\r\ntr_id: TTTC0012U\r\n" in head
        assert body == b'{"k":1}'


async def scenario_chunked_and_gzip_answers_are_decoded(tmp: Path) -> None:
    payload = gzip.compress(b'{"rt_cd":"0","msg1":"chunked"}')
    half = len(payload) // 2
    chunked = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
               b"transfer-encoding: chunked\r\n\r\n"
               + f"{half:x}\r\n".encode() + payload[:half] + b"\r\n"
               + f"{len(payload) - half:x}\r\n".encode() + payload[half:] + b"\r\n0\r\n\r\n")
    box: list[Server] = []
    async with serve(answering(box, lambda h, b: chunked)) as srv:
        box.append(srv)
        async with httpx.AsyncClient(transport=transport(), base_url=f"http://127.0.0.1:{srv.port}") as c:
            assert (await c.get("/q")).json() == {"rt_cd": "0", "msg1": "chunked"}
            assert (await c.get("/q")).json()["msg1"] == "chunked"
        assert srv.connections == 1


async def scenario_an_order_is_acked_over_a_kept_alive_connection(tmp: Path) -> None:
    box: list[Server] = []
    async with serve(answering(box, lambda h, b: response(ACK))) as srv:
        box.append(srv)
        client = order_client(srv.port)
        try:
            for _ in range(3):
                ack = await order(client)
                assert getattr(ack, "odno", None) == "12345"
        finally:
            await client.aclose()
        assert srv.connections == 1 and len(srv.requests) == 3


async def scenario_idle_connections_expire(tmp: Path) -> None:
    box: list[Server] = []
    async with serve(answering(box)) as srv:
        box.append(srv)
        async with httpx.AsyncClient(transport=transport(keepalive_expiry=0.05),
                                     base_url=f"http://127.0.0.1:{srv.port}") as c:
            await c.get("/q")
            await asyncio.sleep(0.15)
            await c.get("/q")
        assert srv.connections == 2


# --- not sent: the order may go again at once ------------------------------------------------------


async def scenario_an_idle_connection_the_server_closed_is_replaced_before_writing(tmp: Path) -> None:
    """The server answers and then hangs up while the connection is idle (or says close): the next
    request opens a new connection instead of being written into the dead one."""
    seen: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await read_request(reader)
        if req is not None:
            seen.append(1)
            extra = b"connection: close\r\n" if len(seen) == 1 else b""
            writer.write(response(ACK, extra=extra))
            await writer.drain()

    async with serve(handler) as srv:
        async with httpx.AsyncClient(transport=transport(), base_url=f"http://127.0.0.1:{srv.port}") as c:
            for _ in range(3):
                assert (await c.post("/q", content=b"{}")).status_code == 200
                await asyncio.sleep(0.05)  # let the server's close arrive: never written into
        assert srv.connections == 3
        client = order_client(srv.port)
        try:
            for _ in range(3):
                await order(client)  # every one acked: none was written into a closed connection
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        assert srv.connections == 6 and len(seen) == 6


async def scenario_no_listener_is_a_connect_error_nothing_sent(tmp: Path) -> None:
    async with serve(answering([])) as srv:
        port = srv.port
    async with httpx.AsyncClient(transport=transport(), base_url=f"http://127.0.0.1:{port}") as c:
        with pytest.raises(httpx.ConnectError) as e:
            await c.post("/order", content=b"{}")
        assert isinstance(e.value, NOT_SENT)
    client = order_client(port)
    try:
        with pytest.raises(TransportError) as not_sent:
            await order(client)
        assert not_sent.value.sent is False and not isinstance(not_sent.value, OutcomeUnknown)
    finally:
        await client.aclose()


async def scenario_a_full_pool_is_a_pool_timeout_nothing_sent(tmp: Path) -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (req := await read_request(reader)) is not None:
            box[0].requests.append(req)
            await release.wait()
            writer.write(response(ACK))
            await writer.drain()

    box: list[Server] = []
    async with serve(slow) as srv:
        box.append(srv)
        async with httpx.AsyncClient(transport=transport(max_connections=1),
                                     base_url=f"http://127.0.0.1:{srv.port}") as c:
            first = asyncio.create_task(c.get("/q"))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout) as e:
                await c.get("/q", timeout=httpx.Timeout(5.0, pool=0.1))
            assert isinstance(e.value, NOT_SENT)
            release.set()
            assert (await first).status_code == 200
            assert (await c.get("/q")).status_code == 200  # the slot came back
        assert srv.connections == 1
        assert len(srv.requests) == 2  # the one that timed out waiting for the pool never arrived


# --- maybe sent: only the broker's order list can tell ----------------------------------------------


async def maybe_sent(handler: Handler, exc: type[httpx.TransportError], read_timeout: float = 5.0) -> None:
    """The transport raises ``exc`` (a "maybe sent" type), and an order sent the same way is
    ``OutcomeUnknown`` after exactly one request, never retried."""
    async with serve(handler) as srv:
        async with httpx.AsyncClient(transport=transport(), base_url=f"http://127.0.0.1:{srv.port}",
                                     timeout=httpx.Timeout(read_timeout)) as c:
            with pytest.raises(exc) as e:
                await c.post(ORDER_CASH_PATH, content=b"{}")
            assert not isinstance(e.value, NOT_SENT)
        before = srv.connections
        client = order_client(srv.port, read_timeout=read_timeout)
        try:
            with pytest.raises(OutcomeUnknown) as unknown:
                await order(client)
            assert unknown.value.cause == exc.__name__
        finally:
            await client.aclose()
        assert srv.connections - before == 1  # one send, never a second


async def scenario_a_dropped_request_is_maybe_sent(tmp: Path) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # took the request, answers nothing

    await maybe_sent(hang_up, httpx.RemoteProtocolError)


async def scenario_a_cut_answer_is_maybe_sent(tmp: Path) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(ACK)[:-5])
        await writer.drain()

    await maybe_sent(cut, httpx.RemoteProtocolError)


async def scenario_a_reset_mid_answer_is_maybe_sent(tmp: Path) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(ACK)[:30])
        await writer.drain()
        writer.transport.abort()  # RST, not FIN

    async with serve(reset) as srv, httpx.AsyncClient(transport=transport(),
                                                      base_url=f"http://127.0.0.1:{srv.port}") as c:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as e:
            await c.post("/order", content=b"{}")
        assert not isinstance(e.value, NOT_SENT)


async def scenario_a_silent_server_is_a_read_timeout_maybe_sent(tmp: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    await maybe_sent(silent, httpx.ReadTimeout, read_timeout=0.2)


async def scenario_garbage_is_a_protocol_error_maybe_sent(tmp: Path) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    await maybe_sent(garbage, httpx.RemoteProtocolError)


# --- TLS ----------------------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def scenario_https_with_verification(tmp: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp)
    box: list[Server] = []
    async with serve(answering(box), ssl_ctx=server_ctx) as srv:
        box.append(srv)
        async with httpx.AsyncClient(transport=transport(verify=client_ctx),
                                     base_url=f"https://127.0.0.1:{srv.port}") as c:
            assert (await c.get("/q")).json() == {"rt_cd": "0"}
            assert (await c.get("/q")).status_code == 200
        assert srv.connections == 1
        # an unknown certificate is refused before anything is sent
        async with httpx.AsyncClient(transport=transport(), base_url=f"https://127.0.0.1:{srv.port}") as c:
            with pytest.raises(httpx.ConnectError) as e:
                await c.get("/q")
            assert isinstance(e.value, NOT_SENT)
        assert len(srv.requests) == 2


SCENARIOS = [
    scenario_requests_reuse_one_kept_alive_connection,
    scenario_chunked_and_gzip_answers_are_decoded,
    scenario_an_order_is_acked_over_a_kept_alive_connection,
    scenario_idle_connections_expire,
    scenario_an_idle_connection_the_server_closed_is_replaced_before_writing,
    scenario_no_listener_is_a_connect_error_nothing_sent,
    scenario_a_full_pool_is_a_pool_timeout_nothing_sent,
    scenario_a_dropped_request_is_maybe_sent,
    scenario_a_cut_answer_is_maybe_sent,
    scenario_a_reset_mid_answer_is_maybe_sent,
    scenario_a_silent_server_is_a_read_timeout_maybe_sent,
    scenario_garbage_is_a_protocol_error_maybe_sent,
    scenario_https_with_verification,
]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__.removeprefix("scenario_"))
def test_transport(scenario: Callable[[Path], Awaitable[None]], loop: str, tmp_path: Path) -> None:
    """Each scenario on both event loops: the services run on uvloop, whose transports differ."""
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(scenario(tmp_path))
    else:
        asyncio.run(scenario(tmp_path))
