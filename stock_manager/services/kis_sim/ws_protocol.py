"""A uvicorn WebSocket protocol that lets the app see what ASGI hides.

KIS clients may answer PINGPONG with a WebSocket pong frame instead of echoing the text (the
official sample does), and ``ws_drop_every_s`` should cut sessions the way a network failure
does (no close frame).  ASGI exposes neither, so this subclass records pong arrivals and offers
``abort()`` through an object it puts in the connection's scope.  Under another server the
handle is simply absent and the simulator falls back to text echoes and close frames.
"""

from __future__ import annotations

import time
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.http11 import Request

SCOPE_KEY = "kis_sim.conn"


class ConnHandle:
    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self.last_pong = 0.0

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (what a dropped network looks like)."""
        transport = getattr(self._protocol, "transport", None)
        if transport is not None:
            transport.abort()


class KisWebSocketProtocol(WebSocketsSansIOProtocol):
    _kis_handle: ConnHandle | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            self._kis_handle = ConnHandle(self)
            cast(dict[str, Any], scope)[SCOPE_KEY] = self._kis_handle

    def handle_pong(self, event: Frame) -> None:
        if self._kis_handle is not None:
            self._kis_handle.last_pong = time.monotonic()
        super().handle_pong(event)
