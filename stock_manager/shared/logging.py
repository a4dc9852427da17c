"""Logging with loguru: the service and instance bound to every line, secrets never written.

Levels follow the worker acceptance criteria (seed 004, section 6): INFO for starts, stops, state
transitions, orders, fills and PnL; WARN for lock contention, risk violations, unfilled orders and
rejections; ERROR for API timeouts, crashes and fatal errors.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-+/=]{8,}"),
    re.compile(r"(?i)((?:appkey|appsecret|secretkey|approval_key|access_token|authorization|token)"
               r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
    re.compile(r"(?i)(password=)\S+"),
    re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+(@)"),
)
MASK = "***"


class Redactor:
    """Replaces known secret values and secret-looking fields in log text."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        for v in values:
            if v and len(v) >= 4 and v not in self._values:
                self._values.append(v)
        self._values.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for v in self._values:
            text = text.replace(v, MASK)
        for p in _PATTERNS:
            text = p.sub(lambda m: m.group(1) + MASK + (m.group(2) if m.re.groups > 1 else ""), text)
        return text


redact = Redactor()


def _patch(record: Record) -> None:
    record["message"] = redact(record["message"])
    for k, v in list(record["extra"].items()):
        if isinstance(v, str):
            record["extra"][k] = redact(v)
    record["extra"]["lvl"] = "WARN" if record["level"].name == "WARNING" else record["level"].name
    if record["exception"] is not None:
        record["extra"]["exc_text"] = True


_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{extra[lvl]: <5}</level> "
    "<cyan>{extra[service]}</cyan>:<cyan>{extra[instance]}</cyan> {message}"
)


def setup_logging(
    service: str,
    instance: str,
    *,
    level: str = "INFO",
    json: bool = False,
    secrets: Iterable[str] = (),
    sink: Any = None,
) -> None:
    """Configure the process-wide logger.  Call once at start, before anything logs."""
    redact.add(secrets)
    logger.remove()
    logger.configure(extra={"service": service, "instance": instance, "lvl": "INFO"}, patcher=_patch)
    lvl = "WARNING" if level.upper() == "WARN" else level.upper()
    logger.add(
        sink if sink is not None else sys.stderr,
        level=lvl,
        format=_FORMAT,
        serialize=json,
        colorize=None if sink is None else False,
        backtrace=False,
        diagnose=False,  # diagnose prints local variables, which may hold secrets
    )
