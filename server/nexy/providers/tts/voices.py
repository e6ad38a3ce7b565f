"""Per-segment voice choice: the script of the text decides the language."""

from __future__ import annotations

import re

from nexy.providers.tts.base import Voice

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str, default: str = "en") -> str:
    """ "ru" when Cyrillic letters outnumber Latin ones, else ``default``."""
    cyrillic = len(_CYRILLIC.findall(text))
    return "ru" if cyrillic and cyrillic >= len(_LATIN.findall(text)) else default


def voice_for(text: str, default_language: str = "en") -> Voice:
    return Voice(language=detect_language(text, default_language))
