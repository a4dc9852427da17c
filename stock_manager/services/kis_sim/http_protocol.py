"""A uvicorn HTTP protocol that writes response header names the way KIS does.

KIS sends standard headers capitalized (``Content-Type``, ``Content-Length``, ``Date``) and its
own headers in lowercase (``tr_id``, ``tr_cont``, ``gt_uid``).  KIS's official sample client
keeps only the all-lowercase names and turns them into namedtuple attributes, so a lowercase
``content-length`` (what uvicorn's default httptools protocol writes, and what Starlette hands
it) crashes that client on the simulator and never on KIS.  h11 writes the names exactly as it
is given them; this protocol hands h11 KIS's casing.  It sits below ASGI, so uvicorn's own
``date`` and ``server`` headers are covered too, and the app stays casing-agnostic.
"""

from __future__ import annotations

from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState


def kis_header_name(name: bytes) -> bytes:
    """``content-type`` -> ``Content-Type``; KIS's own ``snake_case`` names stay lowercase.

    Every header KIS defines itself is spelled with underscores, every standard one with hyphens.
    """
    if b"_" in name:
        return name.lower()
    return b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))


class _KisCasedConnection(h11.Connection):
    # send() goes through this one (not overloaded, unlike send itself)
    def send_with_data_passthrough(self, event: h11.Event) -> list[bytes] | None:
        if isinstance(event, h11.Response):
            event = h11.Response(
                status_code=event.status_code,
                headers=[(kis_header_name(n), v) for n, v in event.headers.raw_items()],
                reason=event.reason,
                http_version=event.http_version,
            )
        return super().send_with_data_passthrough(event)


class KisHttpProtocol(H11Protocol):
    """uvicorn's h11 protocol with :func:`kis_header_name` applied to every response head."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kw: Any) -> None:
        super().__init__(config, server_state, app_state, **kw)
        limit = config.h11_max_incomplete_event_size
        self.conn = _KisCasedConnection(h11.SERVER, limit if limit is not None else DEFAULT_MAX_INCOMPLETE_EVENT_SIZE)
