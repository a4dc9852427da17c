"""The KIS REST client shared by PriceSync, Strategy and Execution.

Two rules shape it:

* An order must never be sent twice by accident.  A rejection that proves KIS did not take the
  order (rate limit EGW00201/EGW00215, token EGW00123/EGW00121, a connection that was never
  established) may be retried; a timeout, a dropped connection, any other 5xx or an unreadable
  success raises ``OutcomeUnknown`` after exactly one send and leaves the answer to reconciliation.
* KIS limits are per app key and every process shares the key: the access token comes from a
  shared ``TokenStore`` (one issue per minute across processes) and every request first takes a
  slot from a shared ``RateLimiter``.

Queries are retried with tenacity per the Execution design's table (rate limit 1/2/4 s, 5xx
2/4/8 s, timeouts 5/5 s; business errors and 4xx never).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time as _time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, Final, Literal, TypeVar

import httpx
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from tenacity import AsyncRetrying, RetryCallState

from stock_manager.shared.clock import Clock, SystemClock, kst
from stock_manager.shared.kis import endpoints as ep
from stock_manager.shared.kis.endpoints import KisEnv, Tr
from stock_manager.shared.kis.errors import (
    ErrorCategory,
    KisError,
    KisParseError,
    MalformedResponse,
    OutcomeUnknown,
    PagingLimitExceeded,
    RateLimited,
    TokenExpired,
    TokenIssueTooOften,
    TransportError,
    classify,
    error_for,
    response_code,
)
from stock_manager.shared.kis.models import (
    PRICELESS_ORD_DVSN,
    AccessToken,
    ApprovalKey,
    AskingPrice,
    Balance,
    BalanceSummary,
    CcldDvsn,
    DailyCcld,
    DailyCcldRow,
    DailyCcldSummary,
    Hashkey,
    MinuteBars,
    OrderAck,
    PsblOrder,
    PsblRvsecnclRow,
    Quote,
    Side,
    VolumeRankRow,
    format_odno,
    parse_approval,
    parse_asking_price,
    parse_balance,
    parse_daily_ccld,
    parse_hashkey,
    parse_minute_bars,
    parse_order_ack,
    parse_psbl_order,
    parse_psbl_rvsecncl,
    parse_quote,
    parse_token,
    parse_volume_rank,
)
from stock_manager.shared.kis.ports import CachedToken, Priority, RateLimiter, TokenStore

_T = TypeVar("_T")

JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"
ALL: Final = "all"

_ACCOUNT_RE: Final = re.compile(r"^(\d{8})-?(\d{2})$")


# --- configuration ------------------------------------------------------------------------------------


class RetryPolicy(BaseModel):
    """Back-off delays (seconds) per failure kind; the tuple length is the retry budget."""

    model_config = ConfigDict(frozen=True)

    rate_limited: tuple[float, ...] = (1.0, 2.0, 4.0)
    server_error: tuple[float, ...] = (2.0, 4.0, 8.0)
    transport: tuple[float, ...] = (5.0, 5.0)
    # An order whose connection was never established: short, because the market moves.
    order_not_sent: tuple[float, ...] = (1.0, 2.0, 4.0)
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)


class KisRestSettings(BaseModel):
    """Everything that differs between real KIS, paper KIS and the simulator."""

    model_config = ConfigDict(frozen=True)

    env: KisEnv
    base_url: str | None = None
    custtype: Literal["P", "B"] = "P"
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=10.0, gt=0)
    # Longer for orders: every order timeout becomes an OutcomeUnknown to reconcile.
    order_read_timeout: float = Field(default=15.0, gt=0)
    token_refresh_margin: timedelta = timedelta(minutes=30)
    # Clock seconds we are willing to wait for the 1-per-minute token rule before raising.
    max_token_wait: float = Field(default=65.0, ge=0)
    legacy_tr_ids: bool = False
    use_hashkey: bool = False
    max_pages: int = Field(default=50, ge=1)
    # a handful of keep-alive connections carries 20 requests/s (and a simulator's hundreds) fine
    max_connections: int = Field(default=8, ge=1, le=100)
    page_pause: float = Field(default=0.0, ge=0)
    retry: RetryPolicy = RetryPolicy()

    @property
    def rest_url(self) -> str:
        return (self.base_url or ep.REST_BASE_URL[self.env]).rstrip("/")


@dataclass(frozen=True, slots=True)
class KisCredentials:
    """App key pair, account and HTS ID; ``repr`` and ``str`` show only masks."""

    app_key: SecretStr
    app_secret: SecretStr
    account: SecretStr
    hts_id: SecretStr | None = None

    def __post_init__(self) -> None:
        if self.hts_id is not None and not self.hts_id.get_secret_value().strip():
            object.__setattr__(self, "hts_id", None)
        # The message must not echo the value: pydantic validation errors would.
        if not _ACCOUNT_RE.match(self.account.get_secret_value().strip()):
            raise ValueError("KIS account must look like 12345678-01 (8 digits, dash, 2 digits)")
        if not self.app_key.get_secret_value() or not self.app_secret.get_secret_value():
            raise ValueError("KIS app key and app secret must not be empty")

    @classmethod
    def of(cls, app_key: str, app_secret: str, account: str, hts_id: str | None = None) -> KisCredentials:
        return cls(SecretStr(app_key), SecretStr(app_secret), SecretStr(account), SecretStr(hts_id) if hts_id else None)

    @property
    def cano(self) -> str:
        match = _ACCOUNT_RE.match(self.account.get_secret_value().strip())
        assert match is not None
        return match.group(1)

    @property
    def acnt_prdt_cd(self) -> str:
        match = _ACCOUNT_RE.match(self.account.get_secret_value().strip())
        assert match is not None
        return match.group(2)

    def key_id(self, env: KisEnv) -> str:
        """A stable, non-secret label for the app key (token cache key, log field)."""
        digest = hashlib.sha256(self.app_key.get_secret_value().encode()).hexdigest()[:16]
        return f"kis-{env.value}-{digest}"

    def secret_values(self) -> list[str]:
        values = [self.app_key, self.app_secret, self.account]
        if self.hts_id is not None:
            values.append(self.hts_id)
        plain = [v.get_secret_value().strip() for v in values]
        return [v for v in (*plain, self.cano, self.cano + self.acnt_prdt_cd) if v]


class _Kind(Enum):
    TOKEN = "token"  # tokenP: never retried, every send counts against 1/minute
    OAUTH = "oauth"  # Approval, hashkey: no bearer token, retried like a query
    QUERY = "query"
    ORDER = "order"


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: dict[str, Any]
    tr_cont: str


class _RedactingFilter(logging.Filter):
    """httpx logs every request URL at INFO, and account queries carry CANO in the query string."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in sorted(self.secrets, key=len, reverse=True):
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_HTTPX_LOG_FILTER: Final = _RedactingFilter()
logging.getLogger("httpx").addFilter(_HTTPX_LOG_FILTER)


# The httpx failures that happen before a single byte of the request is written, over httpx's own
# transport (httpcore): no connection to be had from the pool in time, none could be opened (TCP, TLS),
# or the URL cannot be spoken at all.  An idle connection the server has closed is dropped before it
# is written to (httpcore checks that it is not readable first).  Every other ``httpx.TransportError``
# (ReadTimeout, ReadError, WriteError, WriteTimeout, RemoteProtocolError, ...) may follow a request
# that reached the server: for an order, "maybe sent".  tests/unit/kis/test_kis_transport.py holds
# each case against real sockets.
NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class KisRestClient:
    """Async KIS REST client; one per process and app key, used as an async context manager."""

    def __init__(
        self,
        settings: KisRestSettings,
        credentials: KisCredentials,
        token_store: TokenStore,
        rate_limiter: RateLimiter,
        *,
        clock: Clock | None = None,
        wall: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._creds = credentials
        self._store = token_store
        self._limiter = rate_limiter
        self._clock: Clock = clock or SystemClock()
        # Tokens live on KIS's wall clock (24 h, 1 issue a minute), never on a simulated market clock.
        self._wall: Clock = wall or SystemClock()
        self._sleep = sleep
        self._rng = rng
        self._key_id = credentials.key_id(settings.env)
        self._token: CachedToken | None = None
        self._rejected_token: str | None = None
        self._token_lock = asyncio.Lock()
        self._issued_secrets: list[str] = []
        self._timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        self._order_timeout = httpx.Timeout(settings.order_read_timeout, connect=settings.connect_timeout)
        _HTTPX_LOG_FILTER.secrets.update(v for v in credentials.secret_values() if len(v) >= 4)
        # httpx's own transport, never retrying by itself (retries=0, its default): whether a failed
        # request may be sent again is this client's decision, from the exception (NOT_SENT)
        self._http = httpx.AsyncClient(
            base_url=settings.rest_url,
            transport=transport,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=settings.max_connections,
                                max_keepalive_connections=settings.max_connections, keepalive_expiry=30.0),
        )

    def __repr__(self) -> str:
        return f"KisRestClient(env={self._settings.env.value}, url={self._settings.rest_url}, key_id={self._key_id})"

    @property
    def env(self) -> KisEnv:
        return self._settings.env

    @property
    def key_id(self) -> str:
        return self._key_id

    async def __aenter__(self) -> KisRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _tr(self, tr: Tr) -> str:
        return ep.tr_id(tr, self._settings.env, legacy=self._settings.legacy_tr_ids)

    # --- secrets ------------------------------------------------------------------------------------

    def _secret_values(self) -> list[str]:
        values = [*self._creds.secret_values(), *self._issued_secrets]
        if self._token is not None:
            values.append(self._token.token.get_secret_value())
        # Longest first so a value containing another is masked whole.
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def _redact(self, value: Any) -> Any:
        """Mask any credential that a server echoes back, before it lands in an exception."""
        if isinstance(value, str):
            for secret in self._secret_values():
                if secret in value:
                    value = value.replace(secret, "***")
            return value
        if isinstance(value, Mapping):
            return {k: self._redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact(v) for v in value]
        return value

    # --- token --------------------------------------------------------------------------------------

    def _usable(self, token: CachedToken | None, now: datetime) -> bool:
        if token is None or token.token.get_secret_value() == self._rejected_token:
            return False
        return token.expires_at - self._settings.token_refresh_margin > now

    def _still_valid(self, token: CachedToken | None, now: datetime) -> bool:
        if token is None or token.token.get_secret_value() == self._rejected_token:
            return False
        return token.expires_at > now + timedelta(seconds=ep.TOKEN_ISSUE_MIN_INTERVAL_S)

    async def _bearer(self) -> SecretStr:
        """A usable access token: memory, then the shared store, then KIS (at most 1/minute)."""
        if self._usable(self._token, self._wall.now()):
            assert self._token is not None
            return self._token.token
        async with self._token_lock:
            now = self._wall.now()
            if self._usable(self._token, now):
                assert self._token is not None
                return self._token.token
            cached = await self._store.get_cached(self._key_id)
            if self._usable(cached, now):
                assert cached is not None
                self._token = cached
                return cached.token
            return (await self._obtain_token(force=False)).token

    async def _obtain_token(self, *, force: bool) -> CachedToken:
        async with self._store.issue_guard(self._key_id) as guard:
            now = self._wall.now()
            # Another process may have issued while we waited for the guard.
            cached = await self._store.get_cached(self._key_id)
            if not force and self._usable(cached, now):
                assert cached is not None
                self._token = cached
                return cached
            last = guard.last_attempt_at
            if last is not None:
                # Capped: a skewed clock in another process must not lock us out for longer.
                wait = min(ep.TOKEN_ISSUE_MIN_INTERVAL_S, ep.TOKEN_ISSUE_MIN_INTERVAL_S - (now - last).total_seconds())
                if wait > 0:
                    if not force and self._still_valid(cached, now):
                        # Inside the refresh margin but not expired: use it, refresh later.
                        assert cached is not None
                        self._token = cached
                        return cached
                    if wait > self._settings.max_token_wait:
                        raise TokenIssueTooOften(
                            "token issued less than a minute ago", retry_after=wait, path=ep.TOKEN_PATH
                        )
                    logger.info("kis token: waiting {:.1f}s for the 1-per-minute rule", wait)
                    await self._wall.sleep(wait)
            await guard.record_attempt(self._wall.now())
            body = {
                "grant_type": "client_credentials",
                "appkey": self._creds.app_key.get_secret_value(),
                "appsecret": self._creds.app_secret.get_secret_value(),
            }
            try:
                reply = await self._call(_Kind.TOKEN, "POST", ep.TOKEN_PATH, json_body=body, priority=Priority.ORDER)
            except TokenIssueTooOften as exc:
                # EGW00133: KIS counts from its own last issue; the attempt is recorded, so the
                # next caller waits a full minute from now.
                exc.retry_after = exc.retry_after or ep.TOKEN_ISSUE_MIN_INTERVAL_S
                raise
            token = self._parse(parse_token, reply, None, ep.TOKEN_PATH, self._wall.now())
            issued = CachedToken(self._key_id, token.value, token.expires_at, issued_at=self._wall.now())
            await self._store.save(issued)
            self._token = issued
            self._rejected_token = None
            logger.info("kis token issued for {} (expires {})", self._key_id, issued.expires_at.isoformat())
            return issued

    async def access_token(self) -> AccessToken:
        """The token requests will use (cached, shared or freshly issued)."""
        await self._bearer()
        assert self._token is not None
        return AccessToken(self._token.token, self._token.expires_at)

    async def issue_token(self) -> AccessToken:
        """Ask KIS for a new token now (still never more than once a minute per app key)."""
        async with self._token_lock:
            issued = await self._obtain_token(force=True)
        return AccessToken(issued.token, issued.expires_at)

    async def _replace_rejected(self, rejected: SecretStr) -> None:
        async with self._token_lock:
            if self._token is not None and self._token.token.get_secret_value() != rejected.get_secret_value():
                return  # someone in this process already replaced it
            self._rejected_token = rejected.get_secret_value()
            self._token = None
            cached = await self._store.get_cached(self._key_id)
            if self._usable(cached, self._wall.now()):
                self._token = cached
                return
            await self._obtain_token(force=False)

    # --- transport ----------------------------------------------------------------------------------

    def _headers(
        self, kind: _Kind, tr_id: str | None, tr_cont: str, bearer: SecretStr | None, with_keys: bool
    ) -> dict[str, str]:
        headers = {"content-type": JSON_CONTENT_TYPE}
        if bearer is not None:
            headers["authorization"] = f"Bearer {bearer.get_secret_value()}"
        if with_keys:
            headers["appkey"] = self._creds.app_key.get_secret_value()
            headers["appsecret"] = self._creds.app_secret.get_secret_value()
        if kind in (_Kind.QUERY, _Kind.ORDER):
            assert tr_id is not None
            headers["tr_id"] = tr_id
            headers["tr_cont"] = tr_cont
            headers["custtype"] = self._settings.custtype
        return headers

    async def _send_once(
        self,
        kind: _Kind,
        method: str,
        path: str,
        *,
        tr_id: str | None,
        params: Mapping[str, str] | None,
        content: bytes | None,
        tr_cont: str,
        priority: Priority,
        bearer: SecretStr | None,
        with_keys: bool,
        order_info: Mapping[str, str] | None,
        extra_headers: Mapping[str, str] | None = None,
        slot_taken: bool = False,
    ) -> _Reply:
        headers = self._headers(kind, tr_id, tr_cont, bearer, with_keys)
        if extra_headers:
            headers.update(extra_headers)
        shown_tr = tr_id if kind in (_Kind.QUERY, _Kind.ORDER) else None
        # Built before the slot is taken: the budget's schedule is kept at the broker only if what
        # happens between a grant and the request leaving is short and steady.
        request = self._http.build_request(
            method,
            path,
            params=dict(params) if params is not None else None,
            content=content,
            headers=headers,
            timeout=self._order_timeout if kind is _Kind.ORDER else self._timeout,
        )
        if not slot_taken:
            await self._limiter.acquire(priority)
        failure: str | None = None
        sent = True
        started = _time.monotonic()
        # Exceptions are turned into ours *outside* the except blocks so that no httpx exception
        # (whose request holds our headers) is chained onto what we raise.
        try:
            response = await self._http.send(request)
        except NOT_SENT as exc:
            failure, sent = type(exc).__name__, False
        except httpx.TransportError as exc:
            failure = type(exc).__name__
        if failure is not None:
            logger.warning("kis {} {} tr_id={} failed: {} (sent={})", method, path, shown_tr, failure, sent)
            if kind is _Kind.ORDER and sent:
                raise OutcomeUnknown(
                    "order sent, no answer", cause=failure, request=order_info, tr_id=shown_tr, path=path
                )
            raise TransportError(failure, sent=sent, tr_id=shown_tr, path=path)

        status = response.status_code
        body: dict[str, Any] | None
        try:
            decoded = response.json()
            body = decoded if isinstance(decoded, dict) else None
        except ValueError:
            body = None
        category = classify(status, body)
        logger.debug(
            "kis {} {} tr_id={} http={} msg_cd={} in {:.0f}ms",
            method,
            path,
            shown_tr,
            status,
            response_code(body),
            (_time.monotonic() - started) * 1000,
        )
        if category is None:
            assert body is not None
            return _Reply(status, body, response.headers.get("tr_cont", "").strip().upper())
        if kind is _Kind.ORDER and category in (ErrorCategory.SERVER_ERROR, ErrorCategory.MALFORMED):
            code = response_code(body)
            raise OutcomeUnknown(
                "order answer does not say whether it was taken",
                cause=f"http {status}" + (f" {code}" if code else ""),
                request=order_info,
                http_status=status,
                msg_cd=code,
                tr_id=shown_tr,
                path=path,
            )
        raise error_for(category, http_status=status, body=self._redact(body), tr_id=shown_tr, path=path)

    def _delays(self, kind: _Kind, exc: BaseException) -> tuple[float, ...] | None:
        """Which retry budget (if any) applies to ``exc`` for this kind of call."""
        policy = self._settings.retry
        if kind is _Kind.TOKEN or not isinstance(exc, KisError):
            return None
        if kind is _Kind.ORDER:
            # Only failures that prove the order was not taken; OutcomeUnknown never gets here
            # as retryable.
            if isinstance(exc, RateLimited):
                return policy.rate_limited
            if isinstance(exc, TransportError) and not exc.sent:
                return policy.order_not_sent
            return None
        if isinstance(exc, RateLimited):
            return policy.rate_limited
        if isinstance(exc, TransportError):
            return policy.transport
        if exc.retryable:
            return policy.server_error
        return None

    async def _with_retries(self, kind: _Kind, attempt: Callable[[], Awaitable[_Reply]]) -> _Reply:
        used: Counter[ErrorCategory] = Counter()
        pending: list[float] = []

        def should_retry(state: RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None or not outcome.failed:
                return False
            exc = outcome.exception()
            delays = self._delays(kind, exc) if exc is not None else None
            if delays is None or not isinstance(exc, KisError):
                return False
            used[exc.category] += 1
            if used[exc.category] > len(delays):
                return False
            pending.append(delays[used[exc.category] - 1])
            logger.info("kis retry #{} after {}: {}", used[exc.category], exc.category.value, exc)
            return True

        def wait(_: RetryCallState) -> float:
            base = pending.pop() if pending else 0.0
            jitter = self._settings.retry.jitter
            return base * (1.0 + jitter * (2.0 * self._rng() - 1.0)) if jitter else base

        async def run() -> _Reply:
            return await attempt()

        retrying = AsyncRetrying(retry=should_retry, wait=wait, sleep=self._sleep, reraise=True)
        result: _Reply = await retrying(run)
        return result

    async def _call(
        self,
        kind: _Kind,
        method: str,
        path: str,
        *,
        tr: Tr | None = None,
        with_keys: bool | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, str] | None = None,
        content: bytes | None = None,
        tr_cont: str = "",
        priority: Priority,
        order_info: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        fixed_tr_id: str | None = None,
        slot_taken: bool = False,
    ) -> _Reply:
        """Send with the retry policy of ``kind``; on a rejected token, re-obtain it and resend once.

        ``fixed_tr_id``: a TR sent as named on every environment (no paper twin), instead of ``tr``.
        ``slot_taken``: the caller took the first request's rate slot itself (Execution takes it
        before it writes an order ahead); a retry or a resend takes its own.
        """
        first_paid = [slot_taken]
        tr_id = self._tr(tr) if tr is not None else fixed_tr_id
        keys = with_keys if with_keys is not None else kind in (_Kind.QUERY, _Kind.ORDER)
        if json_body is not None:
            content = json.dumps(dict(json_body), ensure_ascii=False).encode()
        reissued = False
        while True:
            bearer = await self._bearer() if kind in (_Kind.QUERY, _Kind.ORDER) else None

            async def attempt(bearer: SecretStr | None = bearer) -> _Reply:
                paid, first_paid[0] = first_paid[0], False
                return await self._send_once(
                    kind,
                    method,
                    path,
                    tr_id=tr_id,
                    params=params,
                    content=content,
                    tr_cont=tr_cont,
                    priority=priority,
                    bearer=bearer,
                    with_keys=keys,
                    order_info=order_info,
                    extra_headers=extra_headers,
                    slot_taken=paid,
                )

            try:
                return await self._with_retries(kind, attempt)
            except TokenExpired:
                # The gateway refused the token before looking at the request: resending is safe.
                if reissued or bearer is None:
                    raise
                reissued = True
                logger.warning("kis token rejected on {}; obtaining another", path)
                await self._replace_rejected(bearer)

    def _parse(self, parser: Callable[..., _T], reply: _Reply, tr: Tr | None, path: str, *args: Any) -> _T:
        problem: str
        try:
            return parser(reply.body, *args)
        except KisParseError as exc:
            problem = str(exc)
        # Raised outside the except block: nothing chained, the (redacted) body kept for audit.
        raise MalformedResponse(
            f"unexpected response shape: {problem}",
            http_status=reply.status,
            tr_id=self._tr(tr) if tr else None,
            path=path,
            raw=self._redact(reply.body),
        )

    # --- OAuth --------------------------------------------------------------------------------------

    async def approval_key(self) -> ApprovalKey:
        """A WebSocket approval key (``secretkey`` is the app secret under another name)."""
        body = {
            "grant_type": "client_credentials",
            "appkey": self._creds.app_key.get_secret_value(),
            "secretkey": self._creds.app_secret.get_secret_value(),
        }
        reply = await self._call(_Kind.OAUTH, "POST", ep.APPROVAL_PATH, json_body=body, priority=Priority.ORDER)
        key = self._parse(parse_approval, reply, None, ep.APPROVAL_PATH)
        self._issued_secrets = [*self._issued_secrets[-4:], key.value.get_secret_value()]
        return key

    async def hashkey(self, body: Mapping[str, str]) -> Hashkey:
        """Anti-tamper hash of an order body (optional at KIS; see ``use_hashkey``)."""
        return await self._hashkey_for(self._encode(body))

    async def _hashkey_for(self, content: bytes, *, slot_taken: bool = False) -> Hashkey:
        reply = await self._call(
            _Kind.OAUTH, "POST", ep.HASHKEY_PATH, with_keys=True, content=content, priority=Priority.ORDER,
            slot_taken=slot_taken,
        )
        return self._parse(parse_hashkey, reply, None, ep.HASHKEY_PATH)

    @staticmethod
    def _encode(body: Mapping[str, str]) -> bytes:
        return json.dumps(dict(body), ensure_ascii=False).encode()

    # --- orders -------------------------------------------------------------------------------------

    def _account(self) -> dict[str, str]:
        return {"CANO": self._creds.cano, "ACNT_PRDT_CD": self._creds.acnt_prdt_cd}

    async def _order(self, path: str, tr: Tr, body: dict[str, str], info: dict[str, str], *,
                     slot_taken: bool = False) -> OrderAck:
        content = self._encode(body)
        extra: dict[str, str] = {}
        if self._settings.use_hashkey:
            extra["hashkey"] = (await self._hashkey_for(content, slot_taken=slot_taken)).value
            slot_taken = False  # the hashkey request spent the caller's slot: the order takes its own
        reply = await self._call(
            _Kind.ORDER,
            "POST",
            path,
            tr=tr,
            content=content,
            priority=Priority.ORDER,
            order_info=info,
            extra_headers=extra,
            slot_taken=slot_taken,
        )
        problem: str
        try:
            return parse_order_ack(reply.body)
        except KisParseError as exc:
            problem = str(exc)
        # rt_cd was "0": KIS said yes, but we cannot read the order number.
        raise OutcomeUnknown(
            "order accepted but the answer is unreadable",
            cause=problem,
            request=info,
            http_status=reply.status,
            tr_id=self._tr(tr),
            path=path,
            raw=self._redact(reply.body),
        )

    async def order_cash(
        self,
        side: Side,
        symbol: str,
        qty: int,
        ord_dvsn: str = "00",
        price: int = 0,
        *,
        exchange: str | None = None,
        slot_taken: bool = False,
    ) -> OrderAck:
        """Submit a cash buy/sell.  Raises BusinessRejected (definite no) or OutcomeUnknown.

        ``slot_taken``: the caller already took this order's rate slot (``RateLimiter.acquire``).
        """
        if qty <= 0:
            raise ValueError("order quantity must be positive")
        if price < 0:
            raise ValueError("order price must not be negative")
        if ord_dvsn in PRICELESS_ORD_DVSN:
            price = 0
        elif price == 0:
            raise ValueError(f"ORD_DVSN {ord_dvsn} needs a price")
        body = {
            **self._account(),
            "PDNO": symbol,
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": str(qty),
            "ORD_UNPR": str(price),
        }
        if exchange:
            body["EXCG_ID_DVSN_CD"] = exchange
        tr = Tr.ORDER_CASH_BUY if side is Side.BUY else Tr.ORDER_CASH_SELL
        info = {
            "op": "order",
            "side": side.value,
            "symbol": symbol,
            "qty": str(qty),
            "ord_dvsn": ord_dvsn,
            "price": str(price),
        }
        return await self._order(ep.ORDER_CASH_PATH, tr, body, info, slot_taken=slot_taken)

    async def _rvsecncl(
        self,
        code: str,
        orgn_odno: str | int,
        org_no: str,
        qty: int | Literal["all"],
        ord_dvsn: str,
        price: int,
        exchange: str | None,
    ) -> OrderAck:
        if qty != ALL and (not isinstance(qty, int) or qty <= 0):
            raise ValueError("quantity must be positive or 'all'")
        odno = orgn_odno if isinstance(orgn_odno, str) else format_odno(orgn_odno)
        body = {
            **self._account(),
            "KRX_FWDG_ORD_ORGNO": org_no,
            "ORGN_ODNO": odno.strip(),
            "ORD_DVSN": ord_dvsn,
            "RVSE_CNCL_DVSN_CD": code,
            "ORD_QTY": "0" if qty == ALL else str(qty),
            "ORD_UNPR": str(price),
            "QTY_ALL_ORD_YN": "Y" if qty == ALL else "N",
        }
        if exchange:
            body["EXCG_ID_DVSN_CD"] = exchange
        info = {
            "op": "cancel" if code == "02" else "modify",
            "orgn_odno": odno.strip(),
            "qty": str(qty),
            "ord_dvsn": ord_dvsn,
            "price": str(price),
        }
        return await self._order(ep.ORDER_RVSECNCL_PATH, Tr.ORDER_RVSECNCL, body, info)

    async def cancel(
        self,
        orgn_odno: str | int,
        org_no: str,
        qty: int | Literal["all"] = ALL,
        *,
        ord_dvsn: str = "00",
        exchange: str | None = None,
    ) -> OrderAck:
        """Cancel ``qty`` (or all remaining) of an open order.  ``orgn_odno`` as str is sent as
        given; as int it is zero-padded to ten digits.  The answer carries a new ODNO."""
        return await self._rvsecncl("02", orgn_odno, org_no, qty, ord_dvsn, 0, exchange)

    async def modify(
        self,
        orgn_odno: str | int,
        org_no: str,
        *,
        ord_dvsn: str,
        price: int,
        qty: int | Literal["all"] = ALL,
        exchange: str | None = None,
    ) -> OrderAck:
        """Change price or order type of an open order (quantity cannot grow)."""
        if ord_dvsn in PRICELESS_ORD_DVSN:
            price = 0
        elif price <= 0:
            raise ValueError(f"ORD_DVSN {ord_dvsn} needs a price")
        return await self._rvsecncl("01", orgn_odno, org_no, qty, ord_dvsn, price, exchange)

    # --- account queries ----------------------------------------------------------------------------

    async def _pages(self, path: str, tr: Tr, params: Mapping[str, str],
                     priority: Priority) -> AsyncGenerator[dict[str, Any], None]:
        """Each page's body, following tr_cont / CTX_AREA paging to the last page, capped at
        ``max_pages``; a caller that has what it needs stops iterating and no more are asked for."""
        fk = nk = ""
        tr_cont = ""
        for _ in range(self._settings.max_pages):
            page = {**params, "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}
            reply = await self._call(_Kind.QUERY, "GET", path, tr=tr, params=page, tr_cont=tr_cont, priority=priority)
            yield reply.body
            if reply.tr_cont not in ep.TR_CONT_MORE:
                return
            # Sent back unchanged, trailing spaces included.
            next_fk = str(reply.body.get("ctx_area_fk100", reply.body.get("CTX_AREA_FK100", "")))
            next_nk = str(reply.body.get("ctx_area_nk100", reply.body.get("CTX_AREA_NK100", "")))
            if (next_fk, next_nk) == (fk, nk):
                raise MalformedResponse("paging did not advance", tr_id=self._tr(tr), path=path)
            fk, nk, tr_cont = next_fk, next_nk, ep.TR_CONT_NEXT
            if self._settings.page_pause:
                await self._sleep(self._settings.page_pause)
        raise PagingLimitExceeded(f"more than {self._settings.max_pages} pages", tr_id=self._tr(tr), path=path)

    async def inquire_daily_ccld(
        self,
        start: date,
        end: date,
        *,
        ccld_dvsn: CcldDvsn = CcldDvsn.ALL,
        side: Side | None = None,
        symbol: str = "",
        odno: str = "",
        oldest_first: bool = False,
        exchange: str | None = None,
        ordered_since: time | None = None,
        priority: Priority = Priority.RECONCILE,
    ) -> DailyCcld:
        """Every order (and its fills) between ``start`` and ``end``, all pages.

        With ``ordered_since`` (an order time, KST) the listing runs newest first and stops after
        the page that reaches an order older than that: every order placed since is in it, and
        some older ones may be.  Orders older than three months are served by another TR, picked
        automatically.
        """
        if ordered_since is not None and oldest_first:
            raise ValueError("ordered_since needs the newest-first order")
        tr = ep.daily_ccld_tr(start, kst(self._clock.now()).date())
        params = {
            **self._account(),
            "INQR_STRT_DT": start.strftime("%Y%m%d"),
            "INQR_END_DT": end.strftime("%Y%m%d"),
            "SLL_BUY_DVSN_CD": side.code if side else "00",
            "INQR_DVSN": "01" if oldest_first else "00",
            "PDNO": symbol,
            "CCLD_DVSN": ccld_dvsn.value,
            "ORD_GNO_BRNO": "",
            "ODNO": format_odno(odno) if odno else "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
        }
        if exchange:
            params["EXCG_ID_DVSN_CD"] = exchange
        rows: list[DailyCcldRow] = []
        summary: DailyCcldSummary | None = None
        async with aclosing(self._pages(ep.INQUIRE_DAILY_CCLD_PATH, tr, params, priority)) as bodies:
            async for body in bodies:
                page = self._parse(parse_daily_ccld, _Reply(200, body, ""), tr, ep.INQUIRE_DAILY_CCLD_PATH)
                rows.extend(page.rows)
                summary = page.summary or summary
                if ordered_since is not None and any(r.ord_tmd is not None and r.ord_tmd < ordered_since
                                                     for r in page.rows):
                    break  # newest first: this page reached back far enough
        return DailyCcld(rows, summary)

    async def inquire_balance(
        self,
        *,
        include_yesterday: bool = True,
        priority: Priority = Priority.RECONCILE,
    ) -> Balance:
        """Holdings (all pages) and the cash summary.  Slow at KIS; prefer psbl-order for sizing."""
        params = {
            **self._account(),
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00" if include_yesterday else "01",
        }
        rows = []
        summary: BalanceSummary | None = None
        async for body in self._pages(ep.INQUIRE_BALANCE_PATH, Tr.BALANCE, params, priority):
            page = self._parse(parse_balance, _Reply(200, body, ""), Tr.BALANCE, ep.INQUIRE_BALANCE_PATH)
            rows.extend(page.rows)
            summary = page.summary or summary
        return Balance(rows, summary)

    async def inquire_psbl_order(
        self,
        symbol: str,
        price: int = 0,
        ord_dvsn: str = "01",
        *,
        priority: Priority = Priority.RECONCILE,
    ) -> PsblOrder:
        """Buying power for ``symbol``; ORD_DVSN 01 applies the stock's margin rate."""
        params = {
            **self._account(),
            "PDNO": symbol,
            "ORD_UNPR": str(price),
            "ORD_DVSN": ord_dvsn,
            "CMA_EVLU_AMT_ICLD_YN": "N",
            "OVRS_ICLD_YN": "N",
        }
        reply = await self._call(
            _Kind.QUERY, "GET", ep.INQUIRE_PSBL_ORDER_PATH, tr=Tr.PSBL_ORDER, params=params, priority=priority
        )
        return self._parse(parse_psbl_order, reply, Tr.PSBL_ORDER, ep.INQUIRE_PSBL_ORDER_PATH)

    async def inquire_psbl_rvsecncl(
        self,
        *,
        by_stock: bool = False,
        side: Side | None = None,
        priority: Priority = Priority.RECONCILE,
    ) -> list[PsblRvsecnclRow]:
        """Open orders with their cancellable quantity (real only; paper answers MCA00124)."""
        params = {
            **self._account(),
            "INQR_DVSN_1": "1" if by_stock else "0",
            "INQR_DVSN_2": {None: "0", Side.SELL: "1", Side.BUY: "2"}[side],
        }
        rows: list[PsblRvsecnclRow] = []
        async for body in self._pages(ep.INQUIRE_PSBL_RVSECNCL_PATH, Tr.PSBL_RVSECNCL, params, priority):
            rows.extend(
                self._parse(parse_psbl_rvsecncl, _Reply(200, body, ""), Tr.PSBL_RVSECNCL, ep.INQUIRE_PSBL_RVSECNCL_PATH)
            )
        return rows

    # --- quotations ---------------------------------------------------------------------------------

    async def inquire_price(self, symbol: str, *, market: str = "J", priority: Priority = Priority.POLL) -> Quote:
        params = {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": symbol}
        reply = await self._call(
            _Kind.QUERY, "GET", ep.INQUIRE_PRICE_PATH, tr=Tr.PRICE, params=params, priority=priority
        )
        return self._parse(parse_quote, reply, Tr.PRICE, ep.INQUIRE_PRICE_PATH, symbol)

    async def inquire_asking_price(
        self, symbol: str, *, market: str = "J", priority: Priority = Priority.POLL
    ) -> AskingPrice:
        params = {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": symbol}
        reply = await self._call(
            _Kind.QUERY, "GET", ep.INQUIRE_ASKING_PRICE_PATH, tr=Tr.ASKING_PRICE, params=params, priority=priority
        )
        return self._parse(parse_asking_price, reply, Tr.ASKING_PRICE, ep.INQUIRE_ASKING_PRICE_PATH, symbol)

    async def inquire_minute_bars(
        self,
        symbol: str,
        until: time,
        *,
        include_past: bool = True,
        market: str = "J",
        priority: Priority = Priority.POLL,
    ) -> MinuteBars:
        """Up to 30 one-minute bars ending at ``until`` (KST), newest first; walk back by
        calling again with an earlier ``until``."""
        params = {
            "FID_ETC_CLS_CODE": "",
            "FID_COND_MRKT_DIV_CODE": market,
            "FID_INPUT_ISCD": symbol,
            "FID_INPUT_HOUR_1": until.strftime("%H%M%S"),
            "FID_PW_DATA_INCU_YN": "Y" if include_past else "N",
        }
        reply = await self._call(
            _Kind.QUERY, "GET", ep.INQUIRE_MINUTE_BARS_PATH, tr=Tr.MINUTE_BARS, params=params, priority=priority
        )
        return self._parse(parse_minute_bars, reply, Tr.MINUTE_BARS, ep.INQUIRE_MINUTE_BARS_PATH, symbol)

    async def volume_rank(
        self,
        *,
        market: str = "J",
        industry: str = "0000",
        share_class: str = "0",
        rank_by: str = "0",
        target_classes: str = "111111111",
        exclusions: str = "0000000000",
        min_price: int | None = None,
        max_price: int | None = None,
        min_volume: int | None = None,
        priority: Priority = Priority.POLL,
    ) -> list[VolumeRankRow]:
        """Top 30 by volume (real only).  ``rank_by`` is FID_BLNG_CLS_CODE (0 volume, 3 value…)."""
        params = {
            "FID_COND_MRKT_DIV_CODE": market,
            "FID_COND_SCR_DIV_CODE": "20171",
            "FID_INPUT_ISCD": industry,
            "FID_DIV_CLS_CODE": share_class,
            "FID_BLNG_CLS_CODE": rank_by,
            "FID_TRGT_CLS_CODE": target_classes,
            "FID_TRGT_EXLS_CLS_CODE": exclusions,
            "FID_INPUT_PRICE_1": "" if min_price is None else str(min_price),
            "FID_INPUT_PRICE_2": "" if max_price is None else str(max_price),
            "FID_VOL_CNT": "" if min_volume is None else str(min_volume),
            "FID_INPUT_DATE_1": "",
        }
        reply = await self._call(
            _Kind.QUERY, "GET", ep.VOLUME_RANK_PATH, tr=Tr.VOLUME_RANK, params=params, priority=priority
        )
        return self._parse(parse_volume_rank, reply, Tr.VOLUME_RANK, ep.VOLUME_RANK_PATH)

    # --- the trading calendar (국내휴장일조회) ---------------------------------------------------------

    async def chk_holiday(self, day: date, *, priority: Priority = Priority.POLL) -> list[HolidayDay]:
        """KIS's word on ``day`` and the days after it (chk-holiday, CTCA0903R): ``opnd_yn`` says
        whether the market opens, which is what decides whether orders are taken.

        KIS asks callers to use it about once a day.  The TR is sent as named on both environments
        (it has no paper twin to prefix); the first page is enough, ``day`` is its first row.
        """
        params = {"BASS_DT": day.strftime("%Y%m%d"), "CTX_AREA_NK": "", "CTX_AREA_FK": ""}
        reply = await self._call(_Kind.QUERY, "GET", CHK_HOLIDAY_PATH, params=params, priority=priority,
                                 fixed_tr_id=CHK_HOLIDAY_TR)
        return self._parse(parse_holidays, reply, None, CHK_HOLIDAY_PATH)


CHK_HOLIDAY_PATH: Final = "/uapi/domestic-stock/v1/quotations/chk-holiday"
CHK_HOLIDAY_TR: Final = "CTCA0903R"


@dataclass(frozen=True)
class HolidayDay:
    """One row of chk-holiday: business day, trading day, market open, settlement day (Y/N each)."""

    day: date
    business_day: bool  # bzdy_yn
    trading_day: bool  # tr_day_yn
    opened: bool  # opnd_yn: the market opens, orders are taken
    settlement_day: bool  # sttl_day_yn


def parse_holidays(body: Mapping[str, Any]) -> list[HolidayDay]:
    rows = body.get("output")
    if not isinstance(rows, list) or not rows:
        raise KisParseError("chk-holiday: no output rows")
    out: list[HolidayDay] = []
    for r in rows:
        if not isinstance(r, Mapping):
            raise KisParseError("chk-holiday: a row is not an object")
        flags = {k: str(r.get(k, "")).strip().upper() for k in ("bzdy_yn", "tr_day_yn", "opnd_yn", "sttl_day_yn")}
        if flags["opnd_yn"] not in ("Y", "N"):
            raise KisParseError(f"chk-holiday: opnd_yn {r.get('opnd_yn')!r}")
        try:
            day = datetime.strptime(str(r.get("bass_dt", "")), "%Y%m%d").date()  # noqa: DTZ007 (a date only)
        except ValueError:
            raise KisParseError(f"chk-holiday: bass_dt {r.get('bass_dt')!r}") from None
        out.append(HolidayDay(day, flags["bzdy_yn"] == "Y", flags["tr_day_yn"] == "Y", flags["opnd_yn"] == "Y",
                              flags["sttl_day_yn"] == "Y"))
    return out
