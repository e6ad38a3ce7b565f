"""The memory seam: what the local intents need to remember, recall and forget facts per device.

:class:`MemoryHooks` is the interface; durable storage will implement it later.
:class:`InProcessMemory` is the bounded in-process implementation used until then: facts live
only as long as the server process. Secrets are never stored, whatever the implementation: use
:func:`looks_secret` before asking to remember something.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Protocol

from nexy.components import READY, ComponentStatus

# Words that mean "everything" when forgetting.
FORGET_ALL = frozenset({"", "everything", "all", "all of it", "всё", "все", "всё это", "все это"})

_SECRET_WORDS = re.compile(
    r"\b(?:passwords?|passwd|passcodes?|pass\s?phrases?|pin(?:\s?code)?s?\b|api[\s_-]?keys?"
    r"|secret[\s_-]?keys?|private[\s_-]?keys?|access[\s_-]?keys?|tokens?|credentials?"
    r"|cvv|cvc|security\s+codes?|(?:credit\s+|debit\s+|bank\s+)?card\s+numbers?|ssn"
    r"|social\s+security|seed\s+phrases?|recovery\s+phrases?|one[\s-]time\s+codes?"
    r"|парол\w*|пин[\s-]?код\w*|токен\w*|ключ\w*\s+api|api[\s-]?ключ\w*|секретн\w+\s+ключ\w*"
    r"|приватн\w+\s+ключ\w*|номер\w*\s+карт\w*|cvv[\s-]?код\w*|код\w*\s+из\s+смс"
    r"|сид[\s-]?фраз\w*|seed[\s-]?фраз\w*|логин\s+и\s+парол\w*)",
    re.IGNORECASE,
)
# 13 or more digits, possibly grouped by spaces or dashes: card and bank account numbers.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,}")
_KEY_PREFIX = re.compile(r"\b(?:sk|pk|rk)-[\w-]{8,}|\b(?:ghp|gho|github_pat|xox[abpr])[_-]\w{8,}")
_HEX_BLOB = re.compile(r"\b[0-9a-fA-F]{40,}\b")
_BLOB = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def looks_secret(fact: str) -> bool:
    """True if the text looks like a password, key, token or card number."""
    if _SECRET_WORDS.search(fact) or _KEY_PREFIX.search(fact) or _HEX_BLOB.search(fact):
        return True
    if _DIGIT_RUN.search(fact):
        return True
    # A long run of letters and digits mixed is a key or a token, not a word anyone says.
    return any(
        re.search(r"\d", blob) and re.search(r"[A-Za-z]", blob) for blob in _BLOB.findall(fact)
    )


def _words(text: str) -> list[str]:
    """Lowercased words, with "ё" read as "е" so spellings with and without it match."""
    return _WORD.findall(text.casefold().replace("ё", "е"))


def _same_word(said: str, stored: str) -> bool:
    """Equal, or for Russian the same stem: "джазе" and "джаз" differ only in their ending."""
    if said == stored:
        return True
    if not (_CYRILLIC.search(said) and _CYRILLIC.search(stored)):
        return False
    shortest = min(len(said), len(stored))
    common = len(os.path.commonprefix([said, stored]))
    return shortest >= 3 and common >= max(3, shortest - 1)


def _mentions(fact_words: list[str], wanted: set[str]) -> bool:
    """Whether every word of a forget request appears in the fact."""
    return all(any(_same_word(word, stored) for stored in fact_words) for word in wanted)


def _key(fact: str) -> str:
    """The de-duplication key: case and whitespace do not make a fact new."""
    return " ".join(fact.casefold().split())


class MemoryHooks(Protocol):
    """Per-device facts the user asked to keep."""

    async def remember(self, hardware_id: str, fact: str) -> None:
        """Keep a fact for this device (secrets are silently refused)."""
        ...

    async def recall(self, hardware_id: str) -> list[str]:
        """This device's facts, oldest first."""
        ...

    async def forget(self, hardware_id: str, query: str) -> int:
        """Remove facts containing the query's words ("" or "everything"/"всё" = all); count."""
        ...


class InProcessMemory:
    """Bounded, de-duplicated facts per device, kept in this process only."""

    def __init__(self, max_devices: int = 10_000, max_facts: int = 50) -> None:
        if max_devices < 1 or max_facts < 1:
            raise ValueError("max_devices and max_facts must be at least 1")
        self._max_devices = max_devices
        self._max_facts = max_facts
        # Device → facts by de-duplication key, both oldest first: eviction pops from the front.
        self._devices: OrderedDict[str, OrderedDict[str, str]] = OrderedDict()

    async def start(self) -> None:
        """Nothing to open: the facts live in this process."""

    def status(self) -> ComponentStatus:
        """Always ready."""
        return READY

    async def close(self) -> None:
        """Drop every fact: in-process memory does not outlive the server."""
        self._devices.clear()

    async def remember(self, hardware_id: str, fact: str) -> None:
        """Keep a fact; a repeat becomes the newest, a secret or an empty fact is ignored."""
        fact = " ".join(fact.split())
        if not fact or looks_secret(fact):
            return
        facts = self._devices.get(hardware_id)
        if facts is None:
            facts = self._devices[hardware_id] = OrderedDict()
            while len(self._devices) > self._max_devices:
                self._devices.popitem(last=False)
        self._devices.move_to_end(hardware_id)  # recently active devices are evicted last
        key = _key(fact)
        facts.pop(key, None)
        facts[key] = fact
        while len(facts) > self._max_facts:
            facts.popitem(last=False)

    async def recall(self, hardware_id: str) -> list[str]:
        """This device's facts, oldest first."""
        facts = self._devices.get(hardware_id)
        return list(facts.values()) if facts else []

    async def forget(self, hardware_id: str, query: str) -> int:
        """Remove the facts that contain every word of the query; return how many went.

        Words compare case-insensitively; Russian words also match across case endings.
        """
        facts = self._devices.get(hardware_id)
        if not facts:
            return 0
        if _key(query).strip(" .!?") in FORGET_ALL:
            del self._devices[hardware_id]
            return len(facts)
        wanted = set(_words(query))
        if not wanted:
            return 0
        doomed = [key for key, fact in facts.items() if _mentions(_words(fact), wanted)]
        for key in doomed:
            del facts[key]
        if not facts:
            del self._devices[hardware_id]
        return len(doomed)
