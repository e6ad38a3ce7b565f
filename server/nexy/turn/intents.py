"""Local-first intents: common requests answered without any LLM call, in English and Russian.

:class:`IntentMatcher` recognises whole utterances only — the time and date, greetings,
remembering, recalling and forgetting facts, questions about the screen the built-in model cannot
see, and the client's whole action vocabulary (apps, messages and contacts, the browser, the
subscription; one small matcher module per family) — so a longer question that merely contains
the words ("how do I open a file in Python?") still goes to the model. Politeness ("please",
"can you", "hey Nexy", "пожалуйста", "можешь") and punctuation are ignored. The reply's
language is the prompt's: any Cyrillic letter means Russian.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nexy.memory.hooks import MemoryHooks, looks_secret
from nexy.turn.intent_apps import match_app
from nexy.turn.intent_base import IntentReply, Said, first_group, request_span, trim
from nexy.turn.intent_browser import match_browser
from nexy.turn.intent_messages import match_messages
from nexy.turn.intent_phrases import (
    _DATE,
    _DEICTIC,
    _DEICTIC_FACTS,
    _EN_DAYS,
    _EN_MONTHS,
    _EVERYTHING,
    _FORGET,
    _GREETING,
    _MAX_DEICTIC_WORDS,
    _NOT_ABOUT_SCREEN,
    _RECALL,
    _RECALL_LIMIT,
    _REMEMBER,
    _RU_DAYS,
    _RU_MONTHS,
    _SCREEN,
    _SELF,
    _SELF_TO_YOU,
    _TIME,
)
from nexy.turn.intent_subscription import match_subscription

__all__ = ["IntentMatcher", "IntentReply"]

# Family matchers in the order they are tried: a site ("open youtube.com") before an app, the
# browser and the subscription ("open subscription settings") before "open <app>".
_FAMILIES = (match_subscription, match_messages, match_browser, match_app)

log = logging.getLogger(__name__)


def _join(items: list[str], ru: bool) -> str:
    """A spoken list: "a, b, and c" / "a, b и c"."""
    conjunction = " и " if ru else " and "
    if len(items) < 3:
        return conjunction.join(items)
    return ", ".join(items[:-1]) + ("" if ru else ",") + conjunction + items[-1]


def _second_person(fact: str) -> str:
    """'my name is Alex' → 'your name is Alex': the user's words, said back to them."""
    return _SELF.sub(lambda m: _SELF_TO_YOU[" ".join(m[0].lower().split())], fact)


class IntentMatcher:
    """Answers common requests locally; None means the request goes to the model."""

    def __init__(
        self,
        memory: MemoryHooks,
        timezone: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._memory = memory
        self._clock = clock or (lambda: datetime.now(UTC))
        self._zone: tzinfo | None = None  # None: the server's local zone
        if timezone:
            try:
                self._zone = ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown intents timezone %r; using the server's zone", timezone)

    async def match(
        self, prompt: str, hardware_id: str, has_screenshot: bool, model_sees_images: bool
    ) -> IntentReply | None:
        """The local reply to a whole utterance, or None when the model should answer."""
        said = Said.of(prompt)
        greeting = _GREETING.fullmatch(said.key, *trim(said.key, 0, len(said.key)))
        if greeting:
            return self._greet(said, greeting)
        start, end = request_span(said.key)
        if start == end:
            return None
        body = said.key[start:end]
        blind = not model_sees_images
        if blind and _SCREEN.fullmatch(body):
            return IntentReply(said.text("screen"))
        reply = self._time(said, body) or _family(said, start, end)
        if reply is None:
            reply = await self._memory_intent(said, start, end, hardware_id)
        if reply is None and blind and has_screenshot and _refers_to_screen(body):
            reply = IntentReply(said.text("screen"))
        return reply

    def _greet(self, said: Said, match: re.Match[str]) -> IntentReply:
        word = " ".join((match.group("word") or "").lower().split())
        if said.ru:
            hello = "Здравствуйте" if word.startswith("здравств") else "Привет"
            hello = word.capitalize() if word.startswith("добр") else hello
        else:
            hello = word.capitalize() if word.startswith("good") else "Hi"
        return IntentReply(said.text("greet").format(hello=hello))

    def _now(self) -> datetime:
        now = self._clock()
        # A naive clock is read as already in the configured zone; None means the server's zone.
        return now if now.tzinfo is None else now.astimezone(self._zone)

    def _time(self, said: Said, body: str) -> IntentReply | None:
        if _TIME.fullmatch(body):
            now = self._now()
            if said.ru:
                spoken = f"{now.hour}:{now.minute:02d}"
            else:
                spoken = f"{now.hour % 12 or 12}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}"
            return IntentReply(said.text("time").format(time=spoken))
        if _DATE.fullmatch(body):
            now = self._now()
            if said.ru:
                month = _RU_MONTHS.split()[now.month - 1]
                spoken = f"{_RU_DAYS[now.weekday()]}, {now.day} {month}"
            else:
                month = _EN_MONTHS.split()[now.month - 1]
                spoken = f"{_EN_DAYS[now.weekday()]}, {month} {now.day}"
            return IntentReply(said.text("date").format(date=spoken))
        return None

    async def _memory_intent(
        self, said: Said, start: int, end: int, hardware_id: str
    ) -> IntentReply | None:
        if _RECALL.fullmatch(said.key, start, end):
            return await self._recall(said, hardware_id)
        forget = _FORGET.fullmatch(said.key, start, end)
        if forget:
            return await self._forget(said, forget, hardware_id)
        remember = _REMEMBER.fullmatch(said.key, start, end)
        if remember:
            return await self._remember(said, remember, hardware_id)
        return None

    async def _recall(self, said: Said, hardware_id: str) -> IntentReply:
        facts = await self._memory.recall(hardware_id)
        if not facts:
            return IntentReply(said.text("recall_none"))
        # The newest few: a spoken answer listing fifty facts would not be listened to.
        shown = [fact.rstrip(" .!?;") for fact in facts[-_RECALL_LIMIT:]]
        if not said.ru:
            shown = [_second_person(fact) for fact in shown]
        return IntentReply(said.text("recall").format(facts=_join(shown, said.ru)))

    async def _forget(
        self, said: Said, match: re.Match[str], hardware_id: str
    ) -> IntentReply | None:
        if match.group("wipe") is not None:
            query = ""
        else:
            group = first_group(match, "q", "q2")
            key = " ".join(match.group(group).lower().split())
            if key in _DEICTIC_FACTS:
                return None  # "forget it" means "never mind", not "erase my memory"
            query = "" if _EVERYTHING.fullmatch(key) else said.raw_group(match, group)
        removed = await self._memory.forget(hardware_id, query)
        if not query:
            return IntentReply(said.text("wiped" if removed else "wiped_none"))
        name = {0: "forgot_none", 1: "forgot_one"}.get(removed, "forgot_many")
        return IntentReply(said.text(name).format(n=removed))

    async def _remember(
        self, said: Said, match: re.Match[str], hardware_id: str
    ) -> IntentReply | None:
        group = first_group(match, "fact", "fact2")
        key = " ".join(match.group(group).lower().split())
        if key in _DEICTIC_FACTS or key.startswith(("to ", "me ")) or key == "me":
            return None  # "remember to …" is a reminder, "remember this" points at something
        fact = said.raw_group(match, group).strip(" .,!?;:")
        if looks_secret(fact):
            return IntentReply(said.text("secret"))
        await self._memory.remember(hardware_id, fact)
        return IntentReply(said.text("remembered"))


def _family(said: Said, start: int, end: int) -> IntentReply | None:
    """The first family matcher's reply (apps, messages, browser, subscription), or None."""
    return next((r for f in _FAMILIES if (r := f(said, start, end)) is not None), None)


def _refers_to_screen(body: str) -> bool:
    """A short request pointing at "this"/"here" while a screenshot is attached."""
    return (
        len(body.split()) <= _MAX_DEICTIC_WORDS
        and _DEICTIC.search(body) is not None
        and _NOT_ABOUT_SCREEN.match(body) is None
    )
