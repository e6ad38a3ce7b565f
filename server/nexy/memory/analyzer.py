"""Post-turn analysers: what the user said → durable third-person facts about them.

:class:`RuleAnalyzer` is a handful of English and Russian sentence patterns ("my name is …",
"я люблю …"); it is instant and always available. :class:`LLMAnalyzer` asks a capable model for
the facts as JSON; it is used only where the configured model can follow such an instruction
(the embedded tiny model cannot) and runs off the turn's hot path. Neither ever returns a
secret, and neither learns anything from a question.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass

from nexy.memory.facts import clean_fact, fact_key, parse_facts
from nexy.providers.llm.base import LLMProvider, LLMRequest
from nexy.usage import MEMORY_SOURCE, UsageSink, usage_from_meter

log = logging.getLogger(__name__)


def _word_set(words: str) -> frozenset[str]:
    """A set of words written as one space-separated string."""
    return frozenset(words.split())


_MAX_VALUE_WORDS = 8  # a longer tail is a story, not a fact
_MAX_NAME_WORDS = 3

# Commands the intents handle; learning from "forget that I like jazz" would undo the forget.
_MEMORY_COMMAND = re.compile(
    r"^\W*(?:(?:please|пожалуйста)\s+)?(?:remember|memorize|forget|keep\s+in\s+mind"
    r"|запомни\w*|забудь\w*|имей\w*\s+в\s+виду)\b",
    re.IGNORECASE,
)
# Sentences end at terminal punctuation followed by a space, except after an abbreviation
# ("I live in St. Petersburg").
_SENTENCE_END = re.compile(r"[.!?;]+(?=\s|$)|\n")
_ABBREVIATION = re.compile(r"\b(?:st|mr|mrs|ms|dr|jr|sr|mt|ул|г|им|пр)$", re.IGNORECASE)
# Clauses end where a new statement about the speaker (or a question) starts: at a comma or an
# "and"/"but" followed by one ("… and I like jazz"), never inside "jazz, blues and rock".
_STARTS = (
    r"(?:i|i'm|im|my|call|you|what|what's|who|where|how|do|does|can|could|and|but"
    r"|я|меня|мне|мой|моя|моё|мое|мои|зовите|называй|а|но|ты|вы|тебя|вас|что|как|где|кто)\b"
)
_CLAUSE = re.compile(
    rf",\s*(?={_STARTS})|\s+(?:and|but|also|and\s+also)\s+(?=(?:i|i'm|im|my|call)\b)"
    r"|\s+(?:и|а|но|ещё|еще)\s+(?=(?:я|меня|мне|мой|моя|моё|мое|мои|зовите|называй)\b)",
    re.IGNORECASE,
)
# A value that points at the conversation ("I like it", "I love you") says nothing durable.
_POINTERS = _word_set(
    "you your yours it it's this that them him her these those тебя тебе вас вам твой твоя твоё "
    "твое твои ваш ваша это этот эта его ее её их то"
)
_NOT_NAMES = _word_set("not no none nothing secret unknown a the не нет секрет никак")
_LEAD = re.compile(
    r"^(?:(?:well|so|also|oh|and|but|actually|btw|by\s+the\s+way|hey|hi|hello|ok|okay|nexy"
    r"|just\s+so\s+you\s+know|fyi|you\s+know|ну|кстати|а|и|вообще-то|вообще|знаешь|слушай"
    r"|привет|так\s+вот|между\s+прочим|некси)\b[\s,]*)+",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"^(?:do|does|did|am|is|are|was|were|what|what's|who|where|when|why|how|which|can|could"
    r"|would|will|should|shall|have|has|что|кто|где|когда|почему|зачем|как|какой|какая|какое"
    r"|какие|сколько|разве|неужели|правда)\b|\bли\b",
    re.IGNORECASE,
)
# "Could you call me Al?" is a request, not a question about the user.
_POLITE_CALL = re.compile(r"^(?:can|could|would|will)\s+you\s+(?:please\s+)?call\s+me\b", re.I)
_PROFESSIONS = _word_set(
    "teacher engineer developer programmer doctor nurse student designer lawyer writer artist "
    "musician manager accountant scientist researcher chef cook driver pilot farmer journalist "
    "photographer architect dentist pharmacist mechanic electrician plumber carpenter waiter "
    "waitress consultant analyst editor translator professor lecturer tutor economist "
    "psychologist therapist veterinarian vet firefighter officer soldier barista cashier "
    "librarian freelancer entrepreneur mathematician physicist chemist biologist surgeon "
    "paramedic secretary administrator technician tester singer actor actress dancer "
    "composer producer director banker broker realtor cleaner builder baker butcher tailor "
    "retiree pensioner"
)


@dataclass(frozen=True, slots=True)
class _Rule:
    """One sentence shape: the pattern (group ``v`` is the value) and the fact it makes."""

    pattern: re.Pattern[str]
    fact: Callable[[re.Match[str], str], str | None]


def _rule(pattern: str, template: str, *, name: bool = False) -> _Rule:
    def make(match: re.Match[str], value: str) -> str | None:
        words = value.split()
        if name:
            if len(words) > _MAX_NAME_WORDS or words[0].casefold() in _NOT_NAMES:
                return None
            if not all(re.fullmatch(r"[^\W\d_][\w'-]*", word) for word in words):
                return None
            value = " ".join(w[:1].upper() + w[1:] for w in words)  # speech-to-text lowercases
        # The words around the value come from the pattern: normalise how they were typed.
        groups = {key: text.lower() for key, text in match.groupdict().items() if text is not None}
        return template.format(**{**groups, "v": value})

    return _Rule(re.compile(rf"(?:{pattern})\s+(?P<v>.+)$", re.IGNORECASE), make)


def _profession(match: re.Match[str], value: str) -> str | None:
    words = value.casefold().split()
    # "I'm a bit tired" must not become a job: the last word has to be a known profession.
    if not 1 <= len(words) <= 3 or words[-1] not in _PROFESSIONS:
        return None
    return f"The user is {match.group('article').lower()} {value}."


def _ru_favourite(match: re.Match[str], value: str) -> str:
    adjective = match.group("adj").lower()
    return f"{adjective.capitalize()} {match.group('k')} пользователя — {value}."


_RULES = (
    _rule(r"^my\s+name(?:'s|\s+is)", "The user's name is {v}.", name=True),
    _rule(r"^i(?:'m|\s+am|m)?\s+called", "The user's name is {v}.", name=True),
    _rule(
        r"^(?:(?:you\s+can|please|can\s+you|could\s+you|would\s+you)\s+)*(?:please\s+)?call\s+me",
        "The user wants to be called {v}.",
        name=True,
    ),
    _rule(
        r"^i\s+(?:really\s+|also\s+|do\s+)?(?P<verb>like|love|enjoy|adore)", "The user {verb}s {v}."
    ),
    _rule(
        r"^i\s+(?:really\s+)?(?:don't|do\s+not|dont)\s+like|^i\s+(?:hate|dislike)",
        "The user dislikes {v}.",
    ),
    _rule(r"^i\s+(?:currently\s+)?live\s+(?P<prep>in|on|at|near)", "The user lives {prep} {v}."),
    _rule(r"^i(?:'m|\s+am|m)\s+from", "The user is from {v}."),
    _rule(r"^i\s+work\s+(?P<prep>as|at|for|in)", "The user works {prep} {v}."),
    _rule(
        r"^my\s+(?P<adj>favou?rite)\s+(?P<k>\w+(?:\s+\w+)?)\s+(?P<verb>is|are)",
        "The user's {adj} {k} {verb} {v}.",
    ),
    _rule(r"^i(?:'m|\s+am|m)\s+allergic\s+to", "The user is allergic to {v}."),
    _rule(r"^i\s+have\s+an?\s+allergy\s+to", "The user is allergic to {v}."),
    _Rule(re.compile(r"^i(?:'m|\s+am|m)\s+(?P<article>an?)\s+(?P<v>.+)$", re.I), _profession),
    _rule(r"^(?:меня\s+зовут|мо[её]\s+имя)", "Пользователя зовут {v}.", name=True),
    _rule(
        r"^(?:зовите|называй(?:те)?|зови)\s+меня",
        "Пользователь просит называть себя {v}.",
        name=True,
    ),
    _rule(r"^я\s+(?:очень\s+)?люблю", "Пользователь любит {v}."),
    _rule(r"^я\s+(?:очень\s+)?обожаю", "Пользователь обожает {v}."),
    _rule(r"^я\s+не\s+люблю", "Пользователь не любит {v}."),
    _rule(r"^мне\s+(?:очень\s+)?(?P<verb>нравится|нравятся)", "Пользователю {verb} {v}."),
    _rule(r"^я\s+(?:сейчас\s+)?живу\s+(?P<prep>в|во|на)", "Пользователь живёт {prep} {v}."),
    _rule(r"^я\s+родом\s+из|^я\s+из", "Пользователь из {v}."),
    _rule(r"^я\s+работаю", "Пользователь работает {v}."),
    _rule(r"^я\s+по\s+профессии|^по\s+профессии\s+я", "Пользователь по профессии {v}."),
    _Rule(
        re.compile(
            r"^(?:мой|моя|мо[её]|мои)\s+(?P<adj>любим\w+)\s+(?P<k>\w+)(?:\s+(?:—|-|это))?"
            r"\s+(?P<v>.+)$",
            re.IGNORECASE,
        ),
        _ru_favourite,
    ),
    _rule(r"^у\s+меня\s+аллергия\s+на", "У пользователя аллергия на {v}."),
)
_TAIL = re.compile(
    r"[\s,.!?;:\"'«»“”()-]+$|\s+(?:please|thanks|thank\s+you|пожалуйста|спасибо)$",
    re.IGNORECASE,
)


def _trim(value: str) -> str:
    """The value without trailing punctuation and politeness."""
    while (trimmed := _TAIL.sub("", value).strip()) != value:
        value = trimmed
    return value


def _sentences(text: str) -> list[str]:
    """The text cut into sentences, each keeping its final punctuation."""
    sentences, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if _ABBREVIATION.search(text, start, end.start()):
            continue
        sentences.append(text[start : end.end()])
        start = end.end()
    sentences.append(text[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def is_memory_command(prompt: str) -> bool:
    """Whether the prompt asks to remember or forget something (the intents' job)."""
    return _MEMORY_COMMAND.match(_LEAD.sub("", prompt.strip())) is not None


class RuleAnalyzer:
    """English and Russian sentence patterns that turn statements into facts."""

    def facts(self, prompt: str) -> list[str]:
        """Durable third-person facts stated in the prompt; [] for questions and commands."""
        text = prompt.replace("’", "'").strip()
        if not text or is_memory_command(text):
            return []
        found: dict[str, str] = {}
        for sentence in _sentences(text):
            for fact in self._sentence_facts(sentence):
                found.setdefault(fact_key(fact), fact)
        return list(found.values())

    def _sentence_facts(self, sentence: str) -> list[str]:
        asks = sentence.endswith("?")
        clauses = [clause.strip() for clause in _CLAUSE.split(sentence.rstrip(".!?;"))]
        facts = []
        for index, clause in enumerate(clauses):
            clause = _LEAD.sub("", clause).strip()
            polite = _POLITE_CALL.match(clause) is not None
            # The clause carrying the question mark, or opening like a question, asks.
            if not polite and (_QUESTION.search(clause) or (asks and index == len(clauses) - 1)):
                continue
            fact = self._clause_fact(clause)
            if fact is not None:
                facts.append(fact)
        return facts

    @staticmethod
    def _clause_fact(clause: str) -> str | None:
        for rule in _RULES:
            match = rule.pattern.match(clause)
            if match is None:
                continue
            value = _trim(match.group("v"))
            words = value.casefold().split()
            if len(words) > _MAX_VALUE_WORDS or not re.search(r"\w", value):
                continue
            if words[0] in _POINTERS:
                continue
            made = rule.fact(match, value)
            fact = None if made is None else clean_fact(made)
            if fact is not None:
                return fact
        return None


_INSTRUCTION = (
    "You extract durable facts about the user from one exchange with a voice assistant. "
    "Keep only lasting personal facts the user stated: name, how to address them, "
    "preferences, likes and dislikes, where they live, work, family, allergies, things they "
    "asked to remember. Ignore questions, requests, small talk and anything the assistant "
    "said. Never include passwords, codes, card numbers or other secrets. Write each fact as a "
    "short third-person sentence in the user's language, e.g. \"The user's name is Alex.\" or "
    '"Пользователя зовут Алекс." Reply with only JSON: {"facts": ["..."]}; use '
    '{"facts": []} when there is nothing to keep.'
)
_MAX_REPLY_CHARS = 4000  # a facts object is short; a longer reply is not one
_MAX_INPUT_CHARS = 2000


class LLMAnalyzer:
    """Facts from a capable model as JSON; [] on any failure, timeout or unreadable reply.

    Give it the cloud model itself, not the intents wrapper: this is not a user's turn.
    """

    def __init__(
        self,
        llm: LLMProvider,
        *,
        usage: UsageSink | None = None,
        timeout_s: float = 10.0,
        max_facts: int = 5,
    ) -> None:
        self._llm = llm
        self._usage = usage  # where the analysis calls' token counts are stored
        self._timeout = timeout_s
        self._max_facts = max_facts

    @property
    def name(self) -> str:
        """The model's name, for logs."""
        return self._llm.name

    async def facts(self, prompt: str, reply: str, hardware_id: str = "") -> list[str]:
        """The facts the model found in the exchange ([] on failure)."""
        return await self.analyse(prompt, reply, hardware_id) or []

    async def analyse(self, prompt: str, reply: str, hardware_id: str = "") -> list[str] | None:
        """The facts the model found, or None when it failed (so the caller can fall back)."""
        # Bounded input: a pasted document must not turn into a costly analysis call.
        user = (
            f"User said: {prompt[:_MAX_INPUT_CHARS]}\nAssistant replied: {reply[:_MAX_INPUT_CHARS]}"
        )
        request = LLMRequest(system=_INSTRUCTION, user=user, prompt=user, hardware_id=hardware_id)
        text: str | None = None
        try:
            async with asyncio.timeout(self._timeout):
                text = await self._ask(request)
        except Exception as exc:  # a model failure only costs this turn's facts
            log.warning("memory analysis by %s failed: %s", self.name, type(exc).__name__)
        await self._record_usage(request)  # a failed call may still have been billed
        if text is None:
            return None
        facts = parse_facts(text)
        if facts is None:
            log.warning("memory analysis by %s: reply was not a facts object", self.name)
            return None
        return facts[: self._max_facts]

    async def _record_usage(self, request: LLMRequest) -> None:
        record = usage_from_meter(request.meter, request.hardware_id, "", MEMORY_SOURCE)
        if record is None or self._usage is None:
            return
        try:
            await self._usage.record(record)
        except Exception as exc:  # counting must never cost the user their memory
            log.warning("storing memory analysis usage failed: %s", type(exc).__name__)

    async def _ask(self, request: LLMRequest) -> str:
        parts: list[str] = []
        size = 0
        async with aclosing(self._llm.stream(request)) as stream:
            async for fragment in stream:
                parts.append(fragment)
                size += len(fragment)
                if size > _MAX_REPLY_CHARS:
                    break
        return "".join(parts)
