"""The memory analysers: English and Russian rules, and the LLM analyser's lenient JSON reading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nexy.memory.analyzer import LLMAnalyzer, RuleAnalyzer, is_memory_command
from nexy.memory.facts import parse_facts
from nexy.providers.llm.base import LLMError, LLMRequest

FACTS = [
    ("my name is Alex", ["The user's name is Alex."]),
    ("My name's alex smith.", ["The user's name is Alex Smith."]),
    ("I'm called Sam", ["The user's name is Sam."]),
    ("call me Al", ["The user wants to be called Al."]),
    ("Could you call me Al, please?", ["The user wants to be called Al."]),
    ("I like jazz", ["The user likes jazz."]),
    ("I love pizza!", ["The user loves pizza."]),
    ("I really enjoy hiking", ["The user enjoys hiking."]),
    ("I don't like mushrooms", ["The user dislikes mushrooms."]),
    ("I like rock and roll", ["The user likes rock and roll."]),
    ("I like jazz, blues and rock", ["The user likes jazz, blues and rock."]),
    ("I live in Berlin", ["The user lives in Berlin."]),
    ("I live in St. Petersburg", ["The user lives in St. Petersburg."]),
    ("I'm from Spain", ["The user is from Spain."]),
    ("I work as a teacher", ["The user works as a teacher."]),
    ("I work at Google", ["The user works at Google."]),
    ("I'm a teacher", ["The user is a teacher."]),
    ("i am a software engineer", ["The user is a software engineer."]),
    ("my favourite colour is blue", ["The user's favourite colour is blue."]),
    ("My favorite band is The Beatles.", ["The user's favorite band is The Beatles."]),
    ("I'm allergic to peanuts", ["The user is allergic to peanuts."]),
    ("My name is Alex and I like jazz", ["The user's name is Alex.", "The user likes jazz."]),
    ("My name is Alex, what's yours?", ["The user's name is Alex."]),
    (
        "Hello! My name is Alex. I live in Berlin and I love techno.",
        ["The user's name is Alex.", "The user lives in Berlin.", "The user loves techno."],
    ),
    ("Well, by the way, I like tea", ["The user likes tea."]),
    ("I like jazz. I like jazz!", ["The user likes jazz."]),
    ("меня зовут Алекс", ["Пользователя зовут Алекс."]),
    ("меня зовут алекс", ["Пользователя зовут Алекс."]),
    ("зовите меня Саша", ["Пользователь просит называть себя Саша."]),
    ("я люблю джаз", ["Пользователь любит джаз."]),
    ("Я обожаю пиццу", ["Пользователь обожает пиццу."]),
    ("я не люблю грибы", ["Пользователь не любит грибы."]),
    ("мне нравится джаз", ["Пользователю нравится джаз."]),
    ("я живу в Берлине", ["Пользователь живёт в Берлине."]),
    ("я из Москвы", ["Пользователь из Москвы."]),
    ("я работаю учителем", ["Пользователь работает учителем."]),
    ("мой любимый цвет синий", ["Любимый цвет пользователя — синий."]),
    ("моя любимая группа — Битлз", ["Любимая группа пользователя — Битлз."]),
    ("у меня аллергия на орехи", ["У пользователя аллергия на орехи."]),
    (
        "меня зовут Алекс и я живу в Москве",
        ["Пользователя зовут Алекс.", "Пользователь живёт в Москве."],
    ),
    ("Кстати, меня зовут Алекс, а тебя?", ["Пользователя зовут Алекс."]),
]

NOTHING = [
    "",
    "do I like jazz?",
    "Do you know my name is Alex?",
    "what is my name?",
    "So I like jazz?",
    "what do you think, I like jazz?",
    "I didn't say I like jazz",
    "I'm a bit tired",
    "I'm a little confused",
    "I love you",
    "I like it",
    "My name is not important",
    "open Safari",
    "what's the weather in Berlin",
    "forget that I like jazz",
    "remember that my name is Alex",
    "Nexy, remember that I like jazz",
    "please forget my name",
    "люблю ли я джаз?",
    "как меня зовут?",
    "где я живу?",
    "забудь, что я люблю джаз",
    "запомни, что меня зовут Алекс",
    "я не живу в Москве",
]

SECRETS = [
    "my password is hunter2",
    "my favourite password is qwerty",
    "I like my api key sk-abcdefghijklmnop",
    "call me 4111 1111 1111 1111",
    "мой любимый пароль qwerty",
    "я люблю свой пин-код 1234",
]


@pytest.mark.parametrize(("prompt", "expected"), FACTS)
def test_rules_turn_statements_into_third_person_facts(prompt: str, expected: list[str]):
    assert RuleAnalyzer().facts(prompt) == expected


@pytest.mark.parametrize("prompt", NOTHING)
def test_rules_learn_nothing_from_questions_commands_or_chatter(prompt: str):
    assert RuleAnalyzer().facts(prompt) == []


@pytest.mark.parametrize("prompt", SECRETS)
def test_rules_never_return_a_secret(prompt: str):
    assert RuleAnalyzer().facts(prompt) == []


@pytest.mark.parametrize(
    ("prompt", "command"),
    [
        ("remember that I like jazz", True),
        ("Nexy, forget everything", True),
        ("запомни: я люблю джаз", True),
        ("I like jazz", False),
        ("I remember that song", False),
    ],
)
def test_memory_commands_are_recognised(prompt: str, command: bool):
    assert is_memory_command(prompt) is command


class FakeLLM:
    """Streams a canned reply in small pieces; records the request it got."""

    name = "fake-cloud"
    supports_images = False

    def __init__(self, reply: str = "", *, error: bool = False, hang: bool = False) -> None:
        self.reply, self.error, self.hang = reply, error, hang
        self.requests: list[LLMRequest] = []
        self.closed = False

    async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        self.requests.append(request)
        try:
            for start in range(0, len(self.reply), 7):
                yield self.reply[start : start + 7]
            if self.error:
                raise LLMError("upstream failed")
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.closed = True


FENCED = 'Sure! Here you go:\n```json\n{"facts": ["The user\'s name is Alex.", "The user likes jazz."]}\n```'


@pytest.mark.parametrize(
    "reply",
    [
        FENCED,
        '{"facts": ["The user\'s name is Alex.", "The user likes jazz."]}',
        'The facts are {"facts": ["The user\'s name is Alex.", "The user likes jazz."]} — done.',
        '["The user\'s name is Alex.", "the user likes   jazz", "The user likes jazz."]',
    ],
)
async def test_llm_analyzer_reads_json_however_it_is_wrapped(reply: str):
    llm = FakeLLM(reply)
    facts = await LLMAnalyzer(llm).facts("My name is Alex and I like jazz", "Nice to meet you!")
    assert [fact.rstrip(".").lower() for fact in facts] == [
        "the user's name is alex",
        "the user likes jazz",
    ]
    request = llm.requests[0]
    assert "JSON" in request.system and "My name is Alex" in request.user
    assert llm.closed


@pytest.mark.parametrize(
    "reply",
    ["I think the user is called Alex.", "{not json", '{"facts": "Alex"}', '{"text": "hi"}', ""],
)
async def test_llm_analyzer_returns_nothing_for_garbage(reply: str):
    analyzer = LLMAnalyzer(FakeLLM(reply))
    assert await analyzer.facts("My name is Alex", "Hi Alex") == []
    assert await analyzer.analyse("My name is Alex", "Hi Alex") is None  # a failure, not "none"


async def test_llm_analyzer_distinguishes_no_facts_from_failure():
    analyzer = LLMAnalyzer(FakeLLM('{"facts": []}'))
    assert await analyzer.analyse("what time is it", "It's noon.") == []


async def test_llm_analyzer_survives_errors_and_timeouts():
    assert await LLMAnalyzer(FakeLLM('{"facts": ["x"', error=True)).facts("p", "r") == []
    hanging = FakeLLM('{"facts": []', hang=True)
    started = asyncio.get_running_loop().time()
    assert await LLMAnalyzer(hanging, timeout_s=0.05).facts("p", "r") == []
    assert asyncio.get_running_loop().time() - started < 1.0
    assert hanging.closed, "a timed-out request is closed upstream"


async def test_llm_analyzer_filters_secrets_and_bounds_the_count():
    reply = '{"facts": ["The user\'s password is hunter2.", "The user likes tea.", 42, ""]}'
    assert await LLMAnalyzer(FakeLLM(reply)).facts("p", "r") == ["The user likes tea."]
    many = '{"facts": [' + ", ".join(f'"The user likes thing {i}."' for i in range(20)) + "]}"
    assert len(await LLMAnalyzer(FakeLLM(many), max_facts=5).facts("p", "r")) == 5


def test_parse_facts_prefers_the_fenced_block():
    text = 'Ignore {this}.\n```\n{"facts": ["The user likes tea."]}\n```'
    assert parse_facts(text) == ["The user likes tea."]
