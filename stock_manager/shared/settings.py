"""Settings from the environment or a ``.env`` file (CONTRACT.md section 2).

A missing or malformed setting stops the process at start with one line naming it: see
``SettingsError`` and ``load_settings``.  Credentials are ``SecretStr`` so they never print.
A credential comes from the environment, ``.env``, ``NAME_FILE`` or, when none of those gives it,
the OS keyring (``stock-manager secrets set NAME``; ``stock_manager.shared.keyring_secrets``).
"""

from __future__ import annotations

import os
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from stock_manager.shared import keyring_secrets
from stock_manager.shared.market_rules import Fees, FeeSchedule, parse_fee_schedule

ROLES = {
    "pricesync": "sm_pricesync",
    "strategy": "sm_strategy",
    "execution": "sm_execution",
    "readonly": "sm_readonly",
    "dashboard": "sm_dashboard",  # reads like sm_readonly; writes only its alert bookkeeping (0013)
}

# The simulator accepts any credentials; these are what ``sim`` mode uses when none are given.
SIM_APP_KEY = "PSsimAPPKEYforLOCALsimulatorONLY0000"
SIM_APP_SECRET = "sim-only-secret"  # a fixed value the local simulator accepts
SIM_ACCOUNT = "50000000-01"
SIM_HTS_ID = "simuser"

_SECRET_FIELDS = tuple(name.lower() for name in keyring_secrets.NAMES)


class Mode(StrEnum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


class SettingsError(Exception):
    """One line, naming the setting, fit to print and exit on."""


_DEFAULT_URLS: dict[Mode, tuple[str, str]] = {
    Mode.SIM: ("http://127.0.0.1:8800", "ws://127.0.0.1:8800"),
    Mode.PAPER: ("https://openapivts.koreainvestment.com:29443", "ws://ops.koreainvestment.com:31000"),
    Mode.LIVE: ("https://openapi.koreainvestment.com:9443", "ws://ops.koreainvestment.com:21000"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The keyring ranks below the environment and ``.env``: what an operator sets explicitly wins."""
        return init_settings, env_settings, dotenv_settings, _KeyringSource(settings_cls), file_secret_settings

    database_url: str | None = None
    sm_mode: Mode = Mode.SIM
    kis_rest_url: str | None = None
    kis_ws_url: str | None = None
    sm_sim_env: str = Field(default="real", pattern="^(real|paper)$")
    # paper mode against the simulator: run on its market clock (GET /sim/clock), as sim mode does
    sm_sim_clock: bool = False
    sm_dashboard_addr: str = Field(default="127.0.0.1:8080", pattern=r"^[^:\s]+:\d{1,5}$")
    kis_app_key: SecretStr | None = None
    kis_app_secret: SecretStr | None = None
    kis_account: SecretStr | None = None
    kis_hts_id: SecretStr | None = None
    sm_db_role_password: SecretStr | None = None
    sm_log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|WARN|ERROR)$")
    sm_log_json: bool = False
    sm_heartbeat_s: float = Field(default=5.0, gt=0, le=60)
    sm_data_dir: Path = Path(".stock-manager")
    kis_rate_limit_per_s: int | None = Field(default=None, ge=0, le=1000)
    kis_read_timeout_s: float = Field(default=10.0, gt=0, le=120)
    kis_order_timeout_s: float = Field(default=15.0, gt=0, le=120)
    kis_commission_rate: Decimal = Field(default=Decimal("0.00015"), ge=0, le=Decimal("0.01"))
    # fees tiered by trade value (branch/phone accounts), JSON; wins over KIS_COMMISSION_RATE when set
    kis_fee_schedule: Annotated[FeeSchedule | None, NoDecode] = None

    @property
    def rate_limit(self) -> int:
        """Requests per second per app key for all processes together; 0 means no limit."""
        if self.kis_rate_limit_per_s is not None:
            return self.kis_rate_limit_per_s
        return 2 if self.kis_env == "paper" else 20

    @field_validator("sm_sim_clock")
    @classmethod
    def _sim_clock_only_against_a_simulator(cls, v: bool, info: ValidationInfo) -> bool:
        """A simulator's clock can be set and sped up; KIS's gateways have none, and live trading
        must never run on a clock anyone can move."""
        if not v:
            return v
        mode = info.data.get("sm_mode")
        if mode is Mode.LIVE:
            raise ValueError("live mode runs on the system clock; SM_SIM_CLOCK is for paper mode against the simulator")
        if mode is Mode.PAPER and not _is_simulator_url(info.data.get("kis_rest_url")):
            raise ValueError("SM_SIM_CLOCK needs KIS_REST_URL pointing at the simulator, not at KIS")
        return v

    @field_validator("database_url")
    @classmethod
    def _url_parses(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        try:
            conninfo_to_dict(v)
        except Exception as e:  # psycopg raises ProgrammingError with the reason
            raise ValueError("is not a valid PostgreSQL URL") from e
        return v

    @field_validator("kis_fee_schedule", mode="before")
    @classmethod
    def _fee_schedule(cls, v: object) -> FeeSchedule | None:
        """JSON in the environment (pydantic-settings is told not to decode it, so a bad one is a
        ValidationError naming the setting rather than a parse error from deep inside the source)."""
        if isinstance(v, FeeSchedule):
            return v
        if v is None or v == "":
            return None
        if isinstance(v, str):
            return parse_fee_schedule(v)
        raise ValueError("must be a JSON list of tiers")

    @property
    def fees(self) -> Fees:
        """What each fill's commission follows: the schedule when given, else the flat rate."""
        return self.kis_fee_schedule if self.kis_fee_schedule is not None else self.kis_commission_rate

    @field_validator("kis_account")
    @classmethod
    def _account_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not _is_account(v.get_secret_value()):
            raise ValueError("must look like 12345678-01 (8 digits, dash, 2 digits)")
        return v

    @property
    def follows_sim_clock(self) -> bool:
        """Whether the services run on the simulator's market clock: always in sim mode, and in paper
        mode against the simulator when SM_SIM_CLOCK says so (the validator keeps it off KIS itself)."""
        return self.sm_mode is Mode.SIM or self.sm_sim_clock

    @property
    def rest_url(self) -> str:
        return (self.kis_rest_url or _DEFAULT_URLS[self.sm_mode][0]).rstrip("/")

    @property
    def ws_url(self) -> str:
        return (self.kis_ws_url or _DEFAULT_URLS[self.sm_mode][1]).rstrip("/")

    @property
    def kis_env(self) -> str:
        """Which KIS flavour to speak: ``real`` or ``paper`` TR ids and limits."""
        if self.sm_mode is Mode.SIM:
            return self.sm_sim_env
        return "paper" if self.sm_mode is Mode.PAPER else "real"

    def credential(self, name: str) -> SecretStr:
        """A KIS credential; in ``sim`` mode a fixed simulator value stands in for a missing one."""
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return value
        if self.sm_mode is Mode.SIM:
            return SecretStr(
                {
                    "kis_app_key": SIM_APP_KEY,
                    "kis_app_secret": SIM_APP_SECRET,
                    "kis_account": SIM_ACCOUNT,
                    "kis_hts_id": SIM_HTS_ID,
                }[name]
            )
        raise SettingsError(f"setting {name.upper()} is missing (required in {self.sm_mode.value} mode)")

    def require_database(self) -> str:
        if not self.database_url:
            raise SettingsError("setting DATABASE_URL is missing")
        return self.database_url

    def role_url(self, service: str) -> str:
        """The URL a service uses: DATABASE_URL with the service's own role as the user.

        ``SM_DB_URL_<SERVICE>`` overrides it whole (e.g. a managed database with other names).
        """
        override = os.environ.get(f"SM_DB_URL_{service.upper()}")
        if override:
            return override
        params: dict[str, Any] = conninfo_to_dict(self.require_database())
        params["user"] = ROLES[service]
        params.pop("password", None)
        if self.sm_db_role_password is not None:
            params["password"] = self.sm_db_role_password.get_secret_value()
        return make_conninfo("", **params)

    def secret_values(self) -> list[str]:
        """Every secret value in force, for the log redactor."""
        out = []
        for name in _SECRET_FIELDS:
            v: SecretStr | None = getattr(self, name)
            if v is not None and v.get_secret_value():
                out.append(v.get_secret_value())
        if self.database_url:
            pw = conninfo_to_dict(self.database_url).get("password")
            if pw:
                out.append(str(pw))
        return out


class _KeyringSource(PydanticBaseSettingsSource):
    """Credentials stored by ``stock-manager secrets set``, asked for only when the variable is unset."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ answers for all fields at once

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _SECRET_FIELDS:
            if name.upper() in os.environ:
                continue
            value = keyring_secrets.lookup(name.upper())
            if value is not None:
                out[name] = value
        return out


def _is_simulator_url(url: object) -> bool:
    """A KIS_REST_URL that names something other than KIS's own hosts (the simulator: kis-sim)."""
    if not isinstance(url, str) or not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    return bool(host) and not host.endswith("koreainvestment.com")


def _is_account(s: str) -> bool:
    head, _, tail = s.partition("-")
    return len(head) == 8 and head.isdigit() and len(tail) == 2 and tail.isdigit()


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning the first validation problem into one line that names the setting."""
    _read_secret_files()
    try:
        return Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "?"
        raise SettingsError(f"setting {name} is malformed: {err['msg']}") from None


def _read_secret_files() -> None:
    """Docker-secrets style: ``KIS_APP_SECRET_FILE=/run/secrets/x`` supplies ``KIS_APP_SECRET``."""
    for name in (*_SECRET_FIELDS, "database_url"):
        env = name.upper()
        path = os.environ.get(f"{env}_FILE")
        if path and env not in os.environ:
            try:
                os.environ[env] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise SettingsError(f"setting {env}_FILE cannot be read: {e.strerror}") from None
