from __future__ import annotations

import io

from loguru import logger

from stock_manager.shared.logging import setup_logging


def test_secrets_and_secret_looking_fields_are_redacted() -> None:
    sink = io.StringIO()
    setup_logging("execution", "i-1", secrets=["SuperSecretAppKey1234", "12345678-01"], sink=sink)
    logger.info("calling with appkey SuperSecretAppKey1234 for account 12345678-01")
    logger.warning('headers {"authorization": "Bearer eyJhbGciOi.payload.sig", "appsecret": "abcdef123456"}')
    logger.error("connect postgresql://admin:hunter22@db/x failed")
    text = sink.getvalue()
    for secret in ("SuperSecretAppKey1234", "12345678-01", "eyJhbGciOi", "abcdef123456", "hunter22"):
        assert secret not in text
    assert "execution:i-1" in text
    assert " WARN " in text and " ERROR " in text and " INFO " in text
