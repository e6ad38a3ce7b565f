"""The toolkit speaks the reader's language: English by default, Russian for a Russian locale.

Every user-facing line of the scripts is written at its call site as ``say(english, russian)``,
so both versions sit side by side and neither can be forgotten. The language follows the POSIX
rule for messages: the first non-empty of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` decides, and a
value starting with ``ru`` (``ru_RU.UTF-8``, ``ru``) means Russian; anything else, or nothing,
means English. Check names and exit codes never depend on the language.

This module uses only the standard library: ``server/scripts/_bootstrap.py`` loads it by path
to word its hint even when the project's dependencies are missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def is_russian(environ: Mapping[str, str] | None = None) -> bool:
    """True when the locale asks for Russian messages."""
    # The toolkit is a command line, not the server: its language is the terminal's, read on
    # every call so a test (or a caller) that changes the environment is obeyed at once.
    env = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = env.get(name, "")
        if value:
            return value.lower().startswith("ru")
    return False


def say(en: str, ru: str) -> str:
    """The English or the Russian text, whichever the reader's locale asks for."""
    return ru if is_russian() else en
