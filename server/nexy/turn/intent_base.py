"""What every local intent family shares: the reply type and the prompt as said and as matched.

Family matchers (apps, messages, browser, subscription) take a :class:`Said` and the span of the
request once politeness is set aside, and return an :class:`IntentReply` or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nexy.turn.intent_phrases import _CYRILLIC, _POLITE_MID, _PREFIX, _PUNCT, _SUFFIX, _TEXTS

# Russian number words in every gender and the cases a count is said in ("последние пять").
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "один": 1, "одно": 1, "одну": 1, "одна": 1, "два": 2, "две": 2, "двух": 2, "три": 3,
    "трех": 3, "четыре": 4, "четырех": 4, "пять": 5, "пяти": 5, "шесть": 6, "шести": 6,
    "семь": 7, "семи": 7, "восемь": 8, "восьми": 8, "девять": 9, "девяти": 9, "десять": 10,
    "десяти": 10,
}  # fmt: skip
NUMBER_WORDS = "|".join(sorted(_NUMBERS, key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class IntentReply:
    """A local answer: what to say, and optionally an allow-listed command for the client."""

    text: str
    command: str | None = None
    args: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Said:
    """The prompt twice, with equal offsets: as said (names, facts) and as matched (key)."""

    raw: str
    key: str  # punctuation and mid-request politeness blanked out, "ё" read as "е"
    ru: bool

    @classmethod
    def of(cls, prompt: str) -> Said:
        raw = prompt.replace("’", "'")
        key = _PUNCT.sub(" ", raw).replace("ё", "е").replace("Ё", "Е")
        for polite in _POLITE_MID.finditer(raw):
            start, end = polite.span("word")
            key = key[:start] + " " * (end - start) + key[end:]
        return cls(raw, key, _CYRILLIC.search(raw) is not None)

    def text(self, name: str) -> str:
        """The reply template ``name`` in the prompt's language."""
        return _TEXTS[name][self.ru]

    def raw_group(self, match: re.Match[str], group: str) -> str:
        """What the user said for a group, as said: casing and inner punctuation kept."""
        return " ".join(self.raw[match.start(group) : match.end(group)].split())

    def with_colons(self) -> str:
        """The key with the user's colons kept: "text John: on my way" splits at the colon."""
        return "".join(":" if r == ":" else k for r, k in zip(self.raw, self.key, strict=True))


def trim(key: str, start: int, end: int) -> tuple[int, int]:
    """The span without the whitespace at either end."""
    while start < end and key[start].isspace():
        start += 1
    while end > start and key[end - 1].isspace():
        end -= 1
    return start, end


def request_span(key: str) -> tuple[int, int]:
    """Where the request is once politeness and the assistant's name are set aside."""
    start, end = trim(key, 0, len(key))
    while start < end:
        prefix = _PREFIX.match(key, start, end)
        suffix = _SUFFIX.search(key, start, end)
        if prefix and prefix.end() > start:
            start, end = trim(key, prefix.end(), end)
        elif suffix and suffix.start() > start:
            start, end = trim(key, start, suffix.start())
        else:
            break
    return start, end


def first_group(match: re.Match[str], *names: str) -> str:
    """The first of the alternative groups that took part in the match."""
    return next(name for name in names if match.groupdict().get(name) is not None)


def count(word: str | None) -> int | None:
    """A spoken count ("3", "three", "пять") kept within 1..50, or None when none was said."""
    if not word:
        return None
    value = int(word) if word.isdigit() else _NUMBERS.get(word.lower())
    return None if value is None else min(max(value, 1), 50)
