"""Shared doubles for the KIS adapter tests: credentials with recognisable secret values, a
scripted stand-in for the KIS HTTP server (an ``httpx.MockTransport``), and the sample folder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger

from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.kis import endpoints as ep
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.ports import InMemoryTokenStore, Priority
from stock_manager.shared.kis.rest import KisCredentials, KisRestClient, KisRestSettings, RetryPolicy

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "kis-samples"

APP_KEY = "PSappkeySECRET0123456789abcdefghijk"
APP_SECRET = "appsecretSECRET/" + "x" * 160
ACCOUNT = "87654321-01"
HTS_ID = "htsidSECRET"
SECRETS = (APP_KEY, APP_SECRET, ACCOUNT, "8765432101", "87654321", HTS_ID)

T0 = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 09:00 KST, a Tuesday


def require_samples() -> None:
    """Tests built on the real KIS payloads skip, with the reason, where the folder is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"KIS sample folder not found at {SAMPLES} (shared/kis-samples beside the repo)")


def load_sample(name: str) -> dict[str, Any]:
    require_samples()
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data


def ok(body: dict[str, Any], *, tr_cont: str = "", status: int = 200) -> httpx.Response:
    headers = {"tr_cont": tr_cont} if tr_cont else {}
    return httpx.Response(status, json=body, headers=headers)


def kis_error(msg_cd: str, msg1: str = "error", *, status: int = 200, rt_cd: str = "1") -> httpx.Response:
    return httpx.Response(status, json={"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1})


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeKis:
    """A scripted KIS: per-path queues of responses/exceptions, then sensible defaults."""

    def __init__(self, clock: ManualClock) -> None:
        require_samples()  # its default answers are the real KIS payloads
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.token_times: list[datetime] = []
        self.scripts: dict[str, list[Step]] = {}
        self.defaults: dict[str, Callable[[httpx.Request], httpx.Response]] = {
            ep.TOKEN_PATH: self._token,
            ep.APPROVAL_PATH: lambda r: ok({"approval_key": "approval-SECRET-uuid-0000-000000000000"}),
            ep.HASHKEY_PATH: lambda r: ok({"BODY": json.loads(r.content), "HASH": "ab" * 32}),
            ep.INQUIRE_PRICE_PATH: lambda r: ok(load_sample("inquire_price__doc_example.json")["response_body"]),
            ep.ORDER_CASH_PATH: lambda r: ok(load_sample("real_order_cash__real.json")["response_body"]),
            ep.ORDER_RVSECNCL_PATH: lambda r: ok(
                load_sample("order_rvsecncl_modify__doc_example.json")["response_body"]
            ),
        }

    def script(self, path: str, *steps: Step) -> None:
        self.scripts.setdefault(path, []).extend(steps)

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_times.append(self.clock.now())
        n = len(self.token_times)
        expires = (self.clock.now() + timedelta(days=1)).astimezone(KST)
        return ok(
            {
                "access_token": f"token-SECRET-{n}",
                "access_token_token_expired": expires.strftime("%Y-%m-%d %H:%M:%S"),
                "token_type": "Bearer",
                "expires_in": 86400,
            }
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        queue = self.scripts.get(path)
        if queue:
            step = queue.pop(0)
            if isinstance(step, Exception):
                raise step
            if isinstance(step, httpx.Response):
                if path == ep.TOKEN_PATH:
                    self.token_times.append(self.clock.now())
                return step
            return step(request)
        default = self.defaults.get(path)
        if default is None:
            return httpx.Response(404, json={"rt_cd": "1", "msg_cd": "OPSQ0002", "msg1": "없는 서비스 코드 입니다"})
        return default(request)


class RecordingLimiter:
    def __init__(self) -> None:
        self.priorities: list[Priority] = []

    async def acquire(self, priority: Priority) -> None:
        self.priorities.append(priority)


class Harness:
    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.kis = FakeKis(self.clock)
        self.store = InMemoryTokenStore()
        self.limiter = RecordingLimiter()
        self.sleeps: list[float] = []
        self.credentials = KisCredentials.of(APP_KEY, APP_SECRET, ACCOUNT, HTS_ID)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, env: KisEnv = KisEnv.REAL, **settings: Any) -> KisRestClient:
        settings.setdefault("retry", RetryPolicy(jitter=0.0))
        return KisRestClient(
            KisRestSettings(env=env, base_url="https://kis.test", **settings),
            self.credentials,
            self.store,
            self.limiter,
            clock=self.clock,
            wall=self.clock,
            transport=httpx.MockTransport(self.kis.handler),
            sleep=self.sleep,
        )


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Everything loguru writes during the test, at every level."""
    lines: list[str] = []
    sink_id = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink_id)
