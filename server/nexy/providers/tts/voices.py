"""Per-segment voice choice and the handling of client-given voice and language strings.

The script of the text decides the language of a segment. Voice and language strings from a
client are untrusted: engines resolve them against their own voice lists, and these helpers
keep that resolution's normalisation and its warnings the same for every engine.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

from nexy.providers.tts.base import Voice

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")

MAX_VOICE_CHARS = 64  # longer voice names and language tags are never real ones
_LOGGED_CHARS = 40  # how much of a client string a log line shows


def detect_language(text: str, default: str = "en") -> str:
    """ "ru" when Cyrillic letters outnumber Latin ones, else ``default``."""
    cyrillic = len(_CYRILLIC.findall(text))
    return "ru" if cyrillic and cyrillic >= len(_LATIN.findall(text)) else default


def voice_for(text: str, default_language: str = "en") -> Voice:
    return Voice(language=detect_language(text, default_language))


def language_key(language: str) -> str:
    """``"pt_BR "`` and ``"pt-br"`` name the same language; an overlong tag names none ("")."""
    key = language.strip().lower().replace("_", "-")
    return key if len(key) <= MAX_VOICE_CHARS else ""


def language_keys(language: str) -> list[str]:
    """The tag and its primary language, most specific first: "ru-ru" -> ["ru-ru", "ru"]."""
    key = language_key(language)
    primary = key.split("-", 1)[0]
    return [k for k in dict.fromkeys((key, primary)) if k]


def printable(raw: str) -> str:
    """A client string made safe for one log line: truncated and escaped."""
    shown = raw[:_LOGGED_CHARS].encode("unicode_escape").decode("ascii")
    return repr(shown + ("..." if len(raw) > _LOGGED_CHARS else ""))


class WarnOnce:
    """Logs a warning about a client string the first time it is seen, not per segment."""

    def __init__(self, log: logging.Logger, limit: int = 256) -> None:
        self._log = log
        self._limit = limit
        self._seen: OrderedDict[str, None] = OrderedDict()  # bounded: clients choose the keys

    def __call__(self, message: str, raw: str, fallback: str) -> None:
        """Log ``message`` (with ``%s`` for the string and for the fallback) once per ``raw``."""
        key = f"{message}\0{raw[: MAX_VOICE_CHARS + 1]}"
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        self._seen[key] = None
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        self._log.warning(message, printable(raw), fallback)
