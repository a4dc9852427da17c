"""What went wrong with a KIS call, decided in one place.

KIS mixes three error shapes (HTTP 200 with ``rt_cd != "0"``, HTTP 500 with an ``EGW`` gateway
code, HTTP 403 with an OAuth ``error_code``) and the same code can arrive on different statuses
(EGW00201 on 200 and on 500).  ``classify`` branches on the code first and the status second, so
every caller agrees on whether a failure is retryable, a token problem, or a definite rejection.

Exceptions carry only what is safe to log: HTTP status, msg_cd, msg1, tr_id and URL path.  Never
headers, query strings or credential values; ``raw`` bodies are kept for audit but left out of
``str``/``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Final


class ErrorCategory(StrEnum):
    RATE_LIMITED = "rate_limited"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_ISSUE_TOO_OFTEN = "token_issue_too_often"
    AUTH_REJECTED = "auth_rejected"
    SERVICE_NOT_FOUND = "service_not_found"
    SERVER_ERROR = "server_error"
    MALFORMED = "malformed"
    CLIENT_ERROR = "client_error"
    BUSINESS_REJECTED = "business_rejected"
    TRANSPORT = "transport"
    OUTCOME_UNKNOWN = "outcome_unknown"


RATE_LIMIT_CODES: Final = frozenset({"EGW00201", "EGW00215"})
TOKEN_EXPIRED_CODES: Final = frozenset({"EGW00123", "EGW00121"})
TOKEN_TOO_OFTEN_CODES: Final = frozenset({"EGW00133"})
# A paper key on the real domain: configuration, not weather; retrying never helps.
AUTH_REJECTED_CODES: Final = frozenset({"EGW02004"})
SERVICE_NOT_FOUND_CODES: Final = frozenset({"MCA00124", "OPSQ0002"})

# Gateway answers that prove an order never reached the order system.  Any other 5xx on an
# order leaves its fate unknown.
DEFINITE_GATEWAY_REJECTIONS: Final = (
    RATE_LIMIT_CODES | TOKEN_EXPIRED_CODES | TOKEN_TOO_OFTEN_CODES | AUTH_REJECTED_CODES
)


def response_code(body: Mapping[str, Any] | None) -> str | None:
    """``msg_cd`` for API bodies, ``error_code`` for OAuth bodies."""
    if body is None:
        return None
    for key in ("msg_cd", "error_code"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def response_message(body: Mapping[str, Any] | None) -> str | None:
    """``msg1`` (often space-padded, display text only) or the OAuth ``error_description``."""
    if body is None:
        return None
    for key in ("msg1", "error_description"):
        value = body.get(key)
        if isinstance(value, str):
            return value.strip()
    return None


def classify(http_status: int, body: Mapping[str, Any] | None) -> ErrorCategory | None:
    """The single decision of what a KIS HTTP answer means; ``None`` means success.

    ``body`` is the decoded JSON object, or ``None`` when the body was not a JSON object.
    """
    code = response_code(body)
    if code in RATE_LIMIT_CODES or http_status == 429:
        return ErrorCategory.RATE_LIMITED
    if code in TOKEN_EXPIRED_CODES:
        return ErrorCategory.TOKEN_EXPIRED
    if code in TOKEN_TOO_OFTEN_CODES:
        return ErrorCategory.TOKEN_ISSUE_TOO_OFTEN
    if code in AUTH_REJECTED_CODES:
        return ErrorCategory.AUTH_REJECTED
    if code in SERVICE_NOT_FOUND_CODES:
        return ErrorCategory.SERVICE_NOT_FOUND
    if http_status >= 500:
        return ErrorCategory.SERVER_ERROR
    if http_status in (401, 403):
        return ErrorCategory.AUTH_REJECTED
    if not 200 <= http_status < 300:
        return ErrorCategory.CLIENT_ERROR
    if body is None:
        return ErrorCategory.MALFORMED
    rt_cd = body.get("rt_cd")
    if rt_cd is None:
        # OAuth endpoints have no rt_cd; an error_code on a 2xx is still a refusal.
        return ErrorCategory.BUSINESS_REJECTED if "error_code" in body else None
    if str(rt_cd).strip() != "0":
        return ErrorCategory.BUSINESS_REJECTED
    return None


class KisParseError(ValueError):
    """A KIS payload did not have the shape we rely on.

    Messages name the field, never its value: a value may be a credential the server echoed.
    """


class KisError(Exception):
    """Base of every failure the KIS client raises."""

    category: ClassVar[ErrorCategory]
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        summary: str = "",
        *,
        http_status: int | None = None,
        msg_cd: str | None = None,
        msg1: str | None = None,
        tr_id: str | None = None,
        path: str | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self.summary = summary
        self.http_status = http_status
        self.msg_cd = msg_cd
        self.msg1 = msg1
        self.tr_id = tr_id
        self.path = path
        self.raw = raw
        super().__init__(self._describe())

    def _details(self) -> list[str]:
        parts = []
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.msg_cd:
            parts.append(f"msg_cd={self.msg_cd}")
        if self.msg1:
            parts.append(f"msg1={self.msg1!r}")
        if self.tr_id:
            parts.append(f"tr_id={self.tr_id}")
        if self.path:
            parts.append(f"path={self.path}")
        return parts

    def _describe(self) -> str:
        details = " ".join(self._details())
        head = self.summary or self.category.value
        return f"{head} ({details})" if details else head

    def __str__(self) -> str:
        return self._describe()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()!r})"


class RateLimited(KisError):
    """EGW00201/EGW00215 (on 200 or 500) or HTTP 429: the broker refused before doing anything."""

    category = ErrorCategory.RATE_LIMITED
    retryable = True


class TokenExpired(KisError):
    """EGW00123 (expired) or EGW00121 (invalid): obtain another token, then resend once."""

    category = ErrorCategory.TOKEN_EXPIRED


class TokenIssueTooOften(KisError):
    """EGW00133 or our own 1-per-minute guard: asking again now would only extend the penalty."""

    category = ErrorCategory.TOKEN_ISSUE_TOO_OFTEN

    def __init__(self, summary: str = "", *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(summary, **kw)

    def _details(self) -> list[str]:
        parts = super()._details()
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:.1f}s")
        return parts


class AuthRejected(KisError):
    """The keys themselves are refused (e.g. EGW02004 paper key on the real domain)."""

    category = ErrorCategory.AUTH_REJECTED


class ServiceNotFound(KisError):
    """MCA00124: the environment has no such service (many TRs are real-only)."""

    category = ErrorCategory.SERVICE_NOT_FOUND


class ServerError(KisError):
    """A 5xx without a code that tells us more; transient as far as queries are concerned."""

    category = ErrorCategory.SERVER_ERROR
    retryable = True


class MalformedResponse(ServerError):
    """A 2xx whose body is not the JSON we expect (truncated, HTML error page, missing fields)."""

    category = ErrorCategory.MALFORMED


class ClientError(KisError):
    """A 4xx: our request is wrong and sending it again will not fix it."""

    category = ErrorCategory.CLIENT_ERROR


class BusinessRejected(KisError):
    """HTTP 200 with rt_cd != "0": KIS processed the request and said no (order refused, bad input)."""

    category = ErrorCategory.BUSINESS_REJECTED


class TransportError(KisError):
    """No HTTP answer at all (timeout, refused or dropped connection) for a query.

    ``sent`` is False only when the connection was never established, i.e. the request provably
    never left this process.
    """

    category = ErrorCategory.TRANSPORT
    retryable = True

    def __init__(self, summary: str = "", *, sent: bool = True, **kw: Any) -> None:
        self.sent = sent
        super().__init__(summary, **kw)


class PagingLimitExceeded(KisError):
    """More pages than the configured cap: returning a partial list would hide orders."""

    category = ErrorCategory.MALFORMED


class OutcomeUnknown(KisError):
    """An order, cancel or modify may or may not have been accepted; only reconciliation can tell.

    Raised only for order submission/cancel/modify, after exactly one send, when the answer was a
    timeout, a dropped connection, a 5xx other than a definite gateway rejection, or an unreadable
    success.  ``request`` holds the non-secret identifiers needed to find the order again.
    """

    category = ErrorCategory.OUTCOME_UNKNOWN

    def __init__(
        self,
        summary: str = "",
        *,
        cause: str,
        request: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> None:
        self.cause = cause
        self.request = dict(request or {})
        super().__init__(summary, **kw)

    def _details(self) -> list[str]:
        parts = [f"cause={self.cause}", *super()._details()]
        parts.extend(f"{k}={v}" for k, v in self.request.items())
        return parts


_BY_CATEGORY: Final[dict[ErrorCategory, type[KisError]]] = {
    ErrorCategory.RATE_LIMITED: RateLimited,
    ErrorCategory.TOKEN_EXPIRED: TokenExpired,
    ErrorCategory.TOKEN_ISSUE_TOO_OFTEN: TokenIssueTooOften,
    ErrorCategory.AUTH_REJECTED: AuthRejected,
    ErrorCategory.SERVICE_NOT_FOUND: ServiceNotFound,
    ErrorCategory.SERVER_ERROR: ServerError,
    ErrorCategory.MALFORMED: MalformedResponse,
    ErrorCategory.CLIENT_ERROR: ClientError,
    ErrorCategory.BUSINESS_REJECTED: BusinessRejected,
}


def error_for(
    category: ErrorCategory,
    *,
    http_status: int,
    body: Mapping[str, Any] | None,
    tr_id: str | None = None,
    path: str | None = None,
) -> KisError:
    """Build the exception for a classified HTTP answer."""
    cls = _BY_CATEGORY.get(category)
    if cls is None:
        raise ValueError(f"{category} is not produced by classify()")
    return cls(
        http_status=http_status,
        msg_cd=response_code(body),
        msg1=response_message(body),
        tr_id=tr_id,
        path=path,
        raw=body,
    )
