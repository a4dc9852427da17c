"""App keys, access tokens and WebSocket approval keys, with KIS's issuing rules.

Any appkey/appsecret pair is accepted and registered on its first token or approval request.
Token rules run on the *wall* clock, as KIS runs them on its own: one issue per minute per app key
(HTTP 403 EGW00133), the same token again within six hours, 24-hour lifetime; an approval key lasts
24 hours. The market clock, which tests move and speed up, has no say in them, so a token issued
while the market clock shows another day still carries a real expiry time that clients can check
against their own clock. Tests inject a ``ManualClock`` as the wall clock to step past a minute.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stock_manager.shared.clock import KST, Clock

from . import messages as m
from .config import SimConfig


@dataclass(slots=True)
class Token:
    value: str
    app_key: str
    issued: float
    expires: float


@dataclass(slots=True)
class AppKey:
    key: str
    secret: str
    current: Token | None = None
    last_issue: float | None = None
    approval_keys: set[str] = field(default_factory=set)


class AuthError(Exception):
    def __init__(self, msg: m.Msg, status: int = 500) -> None:
        super().__init__(msg.msg1)
        self.msg = msg
        self.status = status


class OAuthError(Exception):
    """OAuth endpoints answer with error_code/error_description, not rt_cd/msg_cd."""

    def __init__(self, code: str, description: str, status: int = 403) -> None:
        super().__init__(description)
        self.body = {"error_description": description, "error_code": code}
        self.status = status


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Auth:
    def __init__(self, config: SimConfig, wall: Clock) -> None:
        self.config = config
        self.wall = wall
        self.app_keys: dict[str, AppKey] = {}
        self.tokens: dict[str, Token] = {}
        self.approvals: dict[str, tuple[str, float]] = {}  # approval key -> (app key, expires)

    def _register(self, key: str, secret: str) -> AppKey:
        if not key or not secret:
            raise OAuthError("EGW00103", "유효하지 않은 AppKey입니다.")
        app = self.app_keys.get(key)
        if app is None:
            app = self.app_keys[key] = AppKey(key, secret)
        elif app.secret != secret:
            raise OAuthError("EGW00105", "유효하지 않은 AppSecret입니다.")
        return app

    def _jwt(self, app_key: str, issued: float, expires: float) -> str:
        header = _b64url(json.dumps({"typ": "JWT", "alg": "HS512"}).encode())
        claims = {
            "sub": "token",
            "aud": str(uuid.uuid4()),
            "prdt_cd": "",
            "iss": "unogw",
            "exp": int(expires),
            "iat": int(issued),
            "jti": app_key,
        }
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{_b64url(secrets.token_bytes(64))}"

    def issue_token(self, key: str, secret: str) -> dict[str, object]:
        app = self._register(key, secret)
        now = self.wall.now().timestamp()
        if app.last_issue is not None and 0 <= now - app.last_issue < self.config.token_min_interval_s:
            raise OAuthError("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
        token = app.current
        reusable = (
            token is not None
            and token.value in self.tokens
            and 0 <= now - token.issued < self.config.token_reuse_window_s
            and now < token.expires
        )
        if not reusable or token is None:
            expires = now + self.config.token_ttl_s
            token = Token(self._jwt(key, now, expires), key, now, expires)
            self.tokens[token.value] = token
            app.current = token
        app.last_issue = now
        expires_at = datetime.fromtimestamp(token.expires, UTC).astimezone(KST)
        return {
            "access_token": token.value,
            "access_token_token_expired": expires_at.strftime("%Y-%m-%d %H:%M:%S"),
            "token_type": "Bearer",
            "expires_in": max(0, int(token.expires - now)),
        }

    def revoke(self, key: str, secret: str, token: str) -> dict[str, object]:
        app = self._register(key, secret)
        tok = self.tokens.get(token)
        if tok is None or tok.app_key != key:
            raise OAuthError("EGW00121", "유효하지 않은 token 입니다.")
        del self.tokens[token]
        if app.current is tok:
            app.current = None
        return {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}

    def approval(self, key: str, secret: str) -> dict[str, object]:
        app = self._register(key, secret)
        approval_key = str(uuid.uuid4())
        app.approval_keys.add(approval_key)
        self.approvals[approval_key] = (key, self.wall.now().timestamp() + self.config.approval_ttl_s)
        return {"approval_key": approval_key}

    def check(self, authorization: str | None, app_key: str | None, app_secret: str | None) -> str:
        """The app key a REST call runs as; raises AuthError with KIS's gateway answer otherwise."""
        if not authorization:
            raise AuthError(m.TOKEN_INVALID)
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise AuthError(m.BEARER_MISSING)
        token = self.tokens.get(value.strip())
        if token is None:
            raise AuthError(m.TOKEN_INVALID)
        if self.wall.now().timestamp() >= token.expires:
            raise AuthError(m.TOKEN_EXPIRED)
        if not app_key or app_key != token.app_key:
            raise AuthError(m.APPKEY_MISMATCH)
        app = self.app_keys[token.app_key]
        if app_secret != app.secret:
            raise AuthError(m.APPSECRET_MISMATCH)
        return token.app_key

    def app_for_approval(self, approval_key: str) -> str | None:
        """The app key an approval key was issued to, or None when unknown or past its 24 hours."""
        found = self.approvals.get(approval_key)
        if found is None:
            return None
        key, expires = found
        if self.wall.now().timestamp() >= expires:
            del self.approvals[approval_key]
            self.app_keys[key].approval_keys.discard(approval_key)
            return None
        return key
