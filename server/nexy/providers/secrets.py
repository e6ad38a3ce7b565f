"""API keys for cloud providers: from the settings (usually the environment) or from a file.

A key file suits container secrets (Docker/Kubernetes mount them as files). Error messages name
the setting and the path so an operator can fix them, and never include what the file holds.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


def resolve_secret(value: SecretStr, file: Path | None, *, what: str) -> str:
    """The key from ``value`` if set, else the stripped contents of ``file``; "" when neither."""
    direct = value.get_secret_value().strip()
    if direct:
        return direct
    if file is None:
        return ""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        # strerror is the OS's own phrase ("No such file or directory"): safe and enough to act on.
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"cannot read {what} from {file}: {reason}") from None
    except UnicodeDecodeError:
        # The decoder's message quotes the offending bytes, which are key material.
        raise ValueError(f"cannot read {what} from {file}: not UTF-8 text") from None
    secret = text.strip()
    if not secret:
        raise ValueError(f"{what} file {file} is empty")
    return secret
