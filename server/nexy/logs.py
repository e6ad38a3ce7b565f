"""Logging set-up: one line per record, plain or JSON, with every secret masked.

Masking happens in a handler filter, so it covers every logger in the process (ours, grpc,
aiohttp, SQLAlchemy, provider SDKs): the configured secret values are replaced wherever they
appear, and well-known key and password shapes are masked even when nobody configured them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from nexy.config import LoggingSettings, Settings
from nexy.config_loading import MASK

_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),  # OpenAI-style keys
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"(?i)((?:password|passwd|api[_-]?key|token|secret)\s*[=:]\s*)[^\s,;&'\"]+"),
    re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"),  # user:password@ in URLs and DSNs
)


class SecretMasker(logging.Filter):
    """Replaces secret values and secret-shaped strings in every record's final text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: _keep_groups(m) + MASK + _tail(m), text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            # Tracebacks can carry paths and values; keep only the exception type.
            message += f" ({record.exc_info[0].__name__ if record.exc_info[0] else 'error'})"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = self.mask(message), None
        return True


def _keep_groups(match: re.Match[str]) -> str:
    return match.group(1) if match.re.groups >= 1 else ""


def _tail(match: re.Match[str]) -> str:
    return match.group(2) if match.re.groups >= 2 else ""


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: SecretStr values, key files' contents, URL passwords."""
    found: list[str] = []
    _collect(settings, found)
    return found


def _collect(model: BaseModel, found: list[str]) -> None:
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        if isinstance(value, Path) and name.endswith("_key_file"):
            # A missing key file is reported where it is used, not here.
            with contextlib.suppress(OSError):
                found.append(value.read_text(encoding="utf-8").strip())
        else:
            _collect_value(value, found)


def _collect_value(value: Any, found: list[str]) -> None:
    """Secrets in one field's value, including inside lists (``auth.tokens``, ``auth.clients``)."""
    if isinstance(value, SecretStr) and value.get_secret_value():
        secret = value.get_secret_value()
        found.append(secret)
        password = re.search(r"://[^:/@\s]+:([^@\s]+)@", secret)
        if password:
            found.append(password.group(1))
    elif isinstance(value, BaseModel):
        _collect(value, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_value(item, found)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "msg": record.getMessage(),
            },
            ensure_ascii=False,
        )


def configure_logging(settings: LoggingSettings, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMasker(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
