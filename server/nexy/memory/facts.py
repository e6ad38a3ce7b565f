"""Pure memory rules shared by the storage merge and the memory service: no I/O, no state.

One merge (:func:`merge`) decides how a change lands on a device's memory: forget first, then
add facts (de-duplicated, secrets dropped, newest kept), then slot the exchange into the
short-term window by time. The database applies it inside a transaction and the service applies
the same function to its cached view, so both always agree. Every step is idempotent, so a
write replayed after a lost acknowledgement changes nothing.

Forget matching builds on :class:`~nexy.memory.hooks.InProcessMemory`'s rules and only widens
them: whatever that matches, this matches too. It also lets "forget that I like jazz" reach
the analyser's third-person "The user likes jazz." (pronouns and fillers in the request are
ignored, an English trailing "s" does not make a word different, and a few irregular Russian
verb forms are aliased). :func:`parse_facts` reads a model's ``{"facts": [...]}`` reply with
the same cleaning, and :func:`context_for` picks what of it the model is shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

# hooks.py owns these rules today; reusing its helpers keeps one definition of a "word match".
from nexy.memory.hooks import FORGET_ALL, _key, _same_word, _words, looks_secret
from nexy.providers.llm.base import Exchange, MemoryContext
from nexy.providers.llm.reply_check import degenerate


def _word_set(words: str) -> frozenset[str]:
    """A set of words written as one space-separated string."""
    return frozenset(words.split())


MAX_FACT_CHARS = 300  # a fact is a sentence, not a document
MAX_TEXT_CHARS = 500  # per side of a stored exchange
CONTEXT_TEXT_CHARS = 200  # per side of an exchange in the LLM input
WITHHELD = "[withheld: it looked like a secret]"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)

# Words a forget request may contain that say nothing about which fact is meant.
_FILLER = _word_set(
    "i me my mine myself im m s am is are was were be the a an that this about user users in at "
    "to of and do does you your please я меня мне мной мой моя мое мои моего моей что это про о "
    "об в на и у же ты пожалуйста пользователь пользователя пользователю"
)
# Irregular first-person forms whose stems differ from the analyser's third-person verb.
_ALIASES = {"люблю": "любит", "любишь": "любит", "хочу": "хочет", "могу": "может"}


class TimedExchange(Protocol):
    """What the short-term window needs of an exchange: who said what, and when."""

    @property
    def user(self) -> str:
        """What the user said."""
        ...

    @property
    def assistant(self) -> str:
        """What the assistant answered."""
        ...

    @property
    def at(self) -> datetime:
        """When it was said."""
        ...


E = TypeVar("E", bound=TimedExchange)


def clean_fact(text: str) -> str | None:
    """The fact with whitespace collapsed and length capped; None if empty or a secret."""
    fact = " ".join(text.split())
    if len(fact) > MAX_FACT_CHARS:
        fact = fact[:MAX_FACT_CHARS].rsplit(" ", 1)[0] + "…"
    if not fact or looks_secret(fact):
        return None
    return fact


def fact_key(fact: str) -> str:
    """The de-duplication key: case, whitespace and a final full stop do not make a fact new."""
    return _key(fact).rstrip(" .!;")


def is_forget_all(query: str) -> bool:
    """Whether a forget request means everything ("", "everything", "всё", …)."""
    return _key(query).strip(" .!?") in FORGET_ALL


def mentions(text: str, query: str) -> bool:
    """Whether the text contains every meaningful word of the query (False for no words)."""
    said = _words(query)
    wanted = {word for word in said if word not in _FILLER} or set(said)
    if not wanted:
        return False
    stored = _words(text)
    return all(any(_alike(word, other) for other in stored) for word in wanted)


def _alike(said: str, stored: str) -> bool:
    if _same_word(said, stored):
        return True
    said, stored = _ALIASES.get(said, said), _ALIASES.get(stored, stored)
    if said == stored:
        return True
    # English verbs and plurals: "like"/"likes", "live"/"lives", "watch"/"watches".
    if not (said.isascii() and stored.isascii()) or min(len(said), len(stored)) < 3:
        return False
    short, long = sorted((said, stored), key=len)
    return long in (short + "s", short + "es")


def forget_facts(facts: Sequence[str], query: str) -> tuple[list[str], int]:
    """The facts left after a forget request, and how many went."""
    if is_forget_all(query):
        return [], len(facts)
    kept = [fact for fact in facts if not mentions(fact, query)]
    return kept, len(facts) - len(kept)


def add_facts(facts: Sequence[str], new: Iterable[str], limit: int) -> list[str]:
    """Facts with the new ones added as newest (a repeat moves), secrets dropped, newest kept."""
    merged: dict[str, str] = {}
    for text in (*facts, *new):
        fact = clean_fact(text)
        if fact is None:
            continue
        key = fact_key(fact)
        merged.pop(key, None)  # re-inserting moves the fact to the newest end
        merged[key] = fact
    return list(merged.values())[-limit:] if limit > 0 else []


def add_exchange(recent: Sequence[E], exchange: E | None, limit: int) -> list[E]:
    """The window with the exchange slotted in by time; a replay or an outdated one is a no-op."""
    window = list(recent)
    if exchange is not None and exchange not in window:
        window.append(exchange)
    # Ordering by time (not by arrival) makes a replayed old exchange fall off the end instead
    # of landing as the newest.
    window.sort(key=lambda item: item.at)
    return window[-limit:] if limit > 0 else []


def forget_exchanges(recent: Sequence[E], query: str) -> list[E]:
    """The exchanges left after a forget request: the ones whose user words match go."""
    if is_forget_all(query):
        return []
    return [item for item in recent if not mentions(item.user, query)]


def merge(
    facts: Sequence[str],
    recent: Sequence[E],
    *,
    add: Iterable[str] = (),
    forget: str | None = None,
    exchange: E | None = None,
    max_facts: int,
    max_recent: int,
) -> tuple[list[str], list[E], int]:
    """Apply one change: forget, then add facts, then the exchange; (facts, recent, forgotten)."""
    forgotten = 0
    if forget is not None:
        facts, forgotten = forget_facts(facts, forget)
        recent = forget_exchanges(recent, forget)
    return (
        add_facts(facts, add, max_facts),
        add_exchange(recent, exchange, max_recent),
        forgotten,
    )


def exchange_texts(prompt: str, reply: str, *, interrupted: bool) -> tuple[str, str] | None:
    """(user, assistant) as stored: secrets withheld, an interrupted reply marked.

    None when there is nothing worth keeping: no words, or a degenerate reply.
    """
    user = WITHHELD if looks_secret(prompt) else clip(prompt, MAX_TEXT_CHARS)
    if not user:
        return None
    # A model imitates its history: an echo or a reply in the wrong language would come back.
    if degenerate(prompt, reply):
        return None
    assistant = WITHHELD if looks_secret(reply) else clip(reply, MAX_TEXT_CHARS)
    if interrupted:
        assistant = f"{assistant} … (interrupted by the user)".strip()
    return user, assistant


def context_for(facts: Sequence[str], recent: Sequence[TimedExchange], limit: int) -> MemoryContext:
    """Facts and the recent exchanges (clipped) for a turn's LLM input, within ``limit`` chars.

    Facts come first and the newest of each are kept: they are what the model should rely on.
    """
    fact_sizes = [len(fact) + 1 for fact in facts]
    shown = _newest_fitting(fact_sizes, limit)
    left = limit - sum(fact_sizes[len(facts) - shown :])
    talk = [
        Exchange(clip(item.user, CONTEXT_TEXT_CHARS), clip(item.assistant, CONTEXT_TEXT_CHARS))
        for item in recent
    ]
    kept = _newest_fitting([len(item.user) + len(item.assistant) + 2 for item in talk], left)
    return MemoryContext(tuple(facts[len(facts) - shown :]), tuple(talk[len(talk) - kept :]))


def clip(text: str, limit: int) -> str:
    """The text with whitespace collapsed, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _newest_fitting(sizes: list[int], budget: int) -> int:
    """How many of the newest items (the list's end) fit the budget together."""
    kept = 0
    for size in reversed(sizes):
        budget -= size
        if budget < 0:
            break
        kept += 1
    return kept


def parse_facts(text: str) -> list[str] | None:
    """Facts from a model reply holding ``{"facts": [...]}`` (fenced or in prose); None if none."""
    candidates = [*_FENCE.findall(text), text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate.strip())
        except ValueError:
            continue
        items = data.get("facts") if isinstance(data, dict) else data
        if isinstance(items, list):
            return _clean_facts(items)
    return None


def _clean_facts(items: list[object]) -> list[str]:
    found: dict[str, str] = {}
    for item in items:
        fact = clean_fact(item) if isinstance(item, str) else None
        if fact is not None:
            found.setdefault(fact_key(fact), fact)
    return list(found.values())
