"""The lean keep-alive transport against real sockets: reuse, framing, and the exception types on
which an order's safety rests (not sent vs. maybe sent)."""

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

from stock_manager.shared.kis.transport import KeepAliveTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


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


async def scenario_requests_reuse_one_kept_alive_connection(tmp: Path) -> None:
    box: list[Server] = []
    async with serve(answering(box)) as srv:
        box.append(srv)
        transport = KeepAliveTransport(max_connections=4)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{srv.port}") as client:
            for i in range(5):
                r = await client.post("/uapi/x", params={"a": str(i)}, content=b'{"k":1}',
                                      headers={"tr_id": "TTTC0012U"})
                assert r.status_code == 200 and r.json() == {"rt_cd": "0"}
        assert srv.connections == 1
        head, body = srv.requests[-1]
        assert head.startswith(b"POST /uapi/x?a=4 HTTP/1.1\r\n")
        assert b"\r\ntr_id: TTTC0012U\r\n" in head and b"\r\nhost: 127.0.0.1:" in head.lower()
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
        async with httpx.AsyncClient(transport=KeepAliveTransport(), base_url=f"http://127.0.0.1:{srv.port}") as c:
            assert (await c.get("/q")).json() == {"rt_cd": "0", "msg1": "chunked"}
            assert (await c.get("/q")).json()["msg1"] == "chunked"
        assert srv.connections == 1


async def scenario_closed_connections_are_replaced_before_writing(tmp: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await read_request(reader)
        if req is not None:
            # the first connection says close; later ones answer and then hang up while idle
            extra = b"connection: close\r\n" if srv.connections == 1 else b""
            writer.write(response(extra=extra))
            await writer.drain()

    async with serve(handler) as srv:
        async with httpx.AsyncClient(transport=KeepAliveTransport(), base_url=f"http://127.0.0.1:{srv.port}") as c:
            for _ in range(3):
                assert (await c.get("/q")).status_code == 200
                await asyncio.sleep(0.05)  # let the server's close arrive: never written into
        assert srv.connections == 3


async def scenario_idle_connections_expire(tmp: Path) -> None:
    box: list[Server] = []
    async with serve(answering(box)) as srv:
        box.append(srv)
        transport = KeepAliveTransport(keepalive_expiry=0.05)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{srv.port}") as c:
            await c.get("/q")
            await asyncio.sleep(0.1)
            await c.get("/q")
        assert srv.connections == 2


async def scenario_no_listener_is_a_connect_error_nothing_sent(tmp: Path) -> None:
    async with serve(answering([])) as srv:
        port = srv.port
    async with httpx.AsyncClient(transport=KeepAliveTransport(), base_url=f"http://127.0.0.1:{port}") as c:
        with pytest.raises(httpx.ConnectError):
            await c.post("/order", content=b"{}")


async def scenario_a_dropped_request_is_a_maybe_sent_error(tmp: Path) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # took the request, answers nothing

    async with serve(hang_up) as srv, httpx.AsyncClient(transport=KeepAliveTransport(),
                                                        base_url=f"http://127.0.0.1:{srv.port}") as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post("/order", content=b"{}")


async def scenario_a_cut_answer_is_a_read_error_and_the_connection_is_not_reused(tmp: Path) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(b'{"rt_cd":"0","msg1":"long"}')[:-5])
        await writer.drain()

    async with serve(cut) as srv:
        async with httpx.AsyncClient(transport=KeepAliveTransport(), base_url=f"http://127.0.0.1:{srv.port}") as c:
            with pytest.raises(httpx.ReadError):
                await c.post("/order", content=b"{}")
            with pytest.raises(httpx.ReadError):
                await c.post("/order", content=b"{}")
        assert srv.connections == 2


async def scenario_a_silent_server_is_a_read_timeout(tmp: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with serve(silent) as srv:
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{srv.port}",
                                     timeout=httpx.Timeout(0.2)) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.post("/order", content=b"{}")


async def scenario_garbage_is_a_protocol_error(tmp: Path) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with serve(garbage) as srv, httpx.AsyncClient(transport=KeepAliveTransport(),
                                                        base_url=f"http://127.0.0.1:{srv.port}") as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("/q")


async def scenario_a_full_pool_is_a_pool_timeout_nothing_sent(tmp: Path) -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            await release.wait()
            writer.write(response())
            await writer.drain()

    async with serve(slow) as srv:
        transport = KeepAliveTransport(max_connections=1)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{srv.port}") as c:
            first = asyncio.create_task(c.get("/q"))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await c.get("/q", timeout=httpx.Timeout(5.0, pool=0.1))
            release.set()
            assert (await first).status_code == 200
            assert (await c.get("/q")).status_code == 200  # the slot came back
        assert srv.connections == 1


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
        transport = KeepAliveTransport(ssl_context=client_ctx)
        async with httpx.AsyncClient(transport=transport, base_url=f"https://127.0.0.1:{srv.port}") as c:
            assert (await c.get("/q")).json() == {"rt_cd": "0"}
            assert (await c.get("/q")).status_code == 200
        assert srv.connections == 1
        # an unknown certificate is refused before anything is sent
        async with httpx.AsyncClient(transport=KeepAliveTransport(),
                                     base_url=f"https://127.0.0.1:{srv.port}") as c:
            with pytest.raises(httpx.ConnectError):
                await c.get("/q")


SCENARIOS = [
    scenario_requests_reuse_one_kept_alive_connection,
    scenario_chunked_and_gzip_answers_are_decoded,
    scenario_closed_connections_are_replaced_before_writing,
    scenario_idle_connections_expire,
    scenario_no_listener_is_a_connect_error_nothing_sent,
    scenario_a_dropped_request_is_a_maybe_sent_error,
    scenario_a_cut_answer_is_a_read_error_and_the_connection_is_not_reused,
    scenario_a_silent_server_is_a_read_timeout,
    scenario_garbage_is_a_protocol_error,
    scenario_a_full_pool_is_a_pool_timeout_nothing_sent,
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
