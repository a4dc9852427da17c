"""The dashboard's own settings, beside the shared ones (``shared/settings.py``).

``SM_ALERT_WEBHOOK_URL`` is a credential (a Slack webhook URL lets anyone post to the channel), so
it is a ``SecretStr``, may come from ``SM_ALERT_WEBHOOK_URL_FILE`` (docker-secrets style) and is
never printed: logs name only its host.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stock_manager.shared.settings import Settings, SettingsError

WRITER_ROLE = "sm_dashboard"


class DashboardConfig(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    sm_alert_webhook_url: SecretStr | None = None
    sm_alert_interval_s: float = Field(default=5.0, gt=0, le=300)
    sm_alert_min_interval_s: float = Field(default=1.0, ge=0, le=600)
    sm_alert_max_per_min: int = Field(default=20, ge=1, le=600)
    sm_alert_repeat_s: float = Field(default=600.0, ge=0, le=86400)
    sm_alert_max_age_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    sm_alert_max_lines: int = Field(default=15, ge=1, le=100)

    @field_validator("sm_alert_webhook_url")
    @classmethod
    def _http_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        parts = urlsplit(v.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return v

    @property
    def webhook_host(self) -> str:
        """What may be logged about the webhook: its host, never the path (the path is the secret)."""
        if self.sm_alert_webhook_url is None:
            return "-"
        return urlsplit(self.sm_alert_webhook_url.get_secret_value()).hostname or "-"


def load_dashboard_config(**overrides: Any) -> DashboardConfig:
    path = os.environ.get("SM_ALERT_WEBHOOK_URL_FILE")
    if path and "SM_ALERT_WEBHOOK_URL" not in os.environ:
        try:
            os.environ["SM_ALERT_WEBHOOK_URL"] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SettingsError(f"setting SM_ALERT_WEBHOOK_URL_FILE cannot be read: {e.strerror}") from None
    try:
        return DashboardConfig(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "?"
        raise SettingsError(f"setting {name} is malformed: {err['msg']}") from None


def listen_addr(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.sm_dashboard_addr.rpartition(":")
    if not 0 < int(port) < 65536:
        raise SettingsError("setting SM_DASHBOARD_ADDR is malformed: port out of range")
    return host, int(port)


def writer_url(settings: Settings) -> str:
    """DATABASE_URL as ``sm_dashboard`` (``SM_DB_URL_DASHBOARD`` overrides it), like every service."""
    return settings.role_url("dashboard")
