"""What a configured cloud provider needs before it can start: its API key.

The providers call these functions when they start, and ``nexy-server config check`` calls them
through ``provider_problems`` without starting anything, so the check and ``serve`` cannot
disagree. Messages name the setting and its environment variable, never the key itself.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from nexy.config import GeminiSettings, OpenAISettings, Settings
from nexy.config_loading import env_name
from nexy.providers.secrets import resolve_secret

# OpenAI's own endpoint refuses every request without a key; other OpenAI-compatible servers
# (Ollama, vLLM, a llama.cpp server) often need none, so only this host makes a key required.
OPENAI_HOST = "api.openai.com"


def _missing(key: str, provider: str) -> ValueError:
    return ValueError(
        f"{provider} has no API key: set {key} ({env_name(key)}) "
        f"or {key}_file (a file that holds it)"
    )


def gemini_keys(settings: GeminiSettings) -> list[str]:
    """The primary and backup keys, each once; ValueError naming the setting when none is set."""
    key = "llm.gemini.api_key"
    primary = resolve_secret(settings.api_key, settings.api_key_file, what=key)
    backup = settings.backup_api_key.get_secret_value().strip()
    keys = list(dict.fromkeys(k for k in (primary, backup) if k))
    if not keys:
        raise _missing(key, "gemini")
    return keys


def openai_key(settings: OpenAISettings) -> str:
    """The key, "" when none is needed; ValueError when OpenAI's own endpoint would have none."""
    key = "llm.openai.api_key"
    value = resolve_secret(settings.api_key, settings.api_key_file, what=key)
    if not value and urlsplit(settings.base_url).hostname == OPENAI_HOST:
        raise _missing(key, f"openai at {OPENAI_HOST}")
    return value


_CHECKS: dict[str, Callable[[Settings], object]] = {
    "gemini": lambda settings: gemini_keys(settings.llm.gemini),
    "openai": lambda settings: openai_key(settings.llm.openai),
}


def provider_problems(settings: Settings) -> list[str]:
    """One line per configured provider (answering or fallback) that could not start; [] if none.

    ``serve`` still starts when only a fallback has a problem (the chain runs degraded), but a
    check exists to say so before the first turn finds out.
    """
    llm = settings.llm
    problems = []
    for name in dict.fromkeys([llm.provider, *llm.fallbacks]):
        check = _CHECKS.get(name)
        if check is None:
            continue  # the embedded and scripted providers need no key
        role = "llm.provider" if name == llm.provider else "llm.fallbacks"
        try:
            check(settings)
        except ValueError as exc:
            problems.append(f"{exc} ({name} is named in {role})")
    return problems
