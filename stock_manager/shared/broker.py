"""Builds the KIS clients a service uses, wired to the shared token and request budget.

Every process that shares an app key shares its token (one issue a minute) and its REST budget
(``ops.rate_limits``); both live in PostgreSQL, so this is the only place that knows how.
"""

from __future__ import annotations

from dataclasses import dataclass

from stock_manager.shared.clock import Clock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.pg_ports import PgRateLimiter, PgTokenStore, UnlimitedRateLimiter
from stock_manager.shared.kis.ports import RateLimiter
from stock_manager.shared.kis.rest import KisCredentials, KisRestClient, KisRestSettings
from stock_manager.shared.kis.ws import KisWebSocketClient
from stock_manager.shared.logging import redact
from stock_manager.shared.settings import Settings


@dataclass
class Broker:
    rest: KisRestClient
    credentials: KisCredentials
    env: KisEnv
    limiter: RateLimiter  # the app key's shared budget, which the KIS client also takes its slots from

    async def aclose(self) -> None:
        await self.rest.aclose()


def credentials(settings: Settings) -> KisCredentials:
    return KisCredentials(
        settings.credential("kis_app_key"),
        settings.credential("kis_app_secret"),
        settings.credential("kis_account"),
        settings.credential("kis_hts_id"),
    )


def open_broker(settings: Settings, pool: Pool, conninfo: str, clock: Clock) -> Broker:
    """The REST client for this process; ``conninfo`` is the service's own database URL."""
    creds = credentials(settings)
    redact.add(creds.secret_values())
    env = KisEnv(settings.kis_env)
    rest_settings = KisRestSettings(env=env, base_url=settings.rest_url, read_timeout=settings.kis_read_timeout_s,
                                    order_read_timeout=settings.kis_order_timeout_s)
    key_id = creds.key_id(env)
    limiter: RateLimiter = (
        PgRateLimiter(pool, key_id, settings.rate_limit) if settings.rate_limit > 0 else UnlimitedRateLimiter()
    )
    store = PgTokenStore(pool, conninfo, creds.app_secret)
    rest = KisRestClient(rest_settings, creds, store, limiter, clock=clock)
    return Broker(rest, creds, env, limiter)


def open_websocket(settings: Settings, broker: Broker) -> KisWebSocketClient:
    """The one WebSocket session of this app key (PriceSync holds it)."""
    return KisWebSocketClient(broker.rest, env=broker.env, url=settings.ws_url, hts_id=broker.credentials.hts_id)
