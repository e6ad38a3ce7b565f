"""Local-first intents, the in-process memory they use, and the intent-first LLM wrapper."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime

import pytest

from nexy.components import ComponentStatus, State
from nexy.memory.hooks import InProcessMemory, looks_secret
from nexy.providers.llm.base import Image, LLMRequest
from nexy.providers.llm.intent import IntentFirstLLM
from nexy.turn.intents import IntentMatcher, IntentReply

NOW = datetime(2026, 11, 26, 15, 7)  # a Thursday afternoon, naive: read as the configured zone
HW = "device-1"
SCREEN_EN = (
    "I can't see your screen with the built-in model. A cloud model with vision can describe it."
)
SCREEN_RU = (
    "Встроенная модель не видит ваш экран. Описать его может облачная модель с поддержкой "
    "изображений."
)


def matcher(memory: InProcessMemory | None = None, clock: datetime = NOW) -> IntentMatcher:
    return IntentMatcher(memory or InProcessMemory(), clock=lambda: clock)


async def ask(
    prompt: str,
    memory: InProcessMemory | None = None,
    *,
    screenshot: bool = False,
    sees_images: bool = False,
) -> IntentReply | None:
    return await matcher(memory).match(prompt, HW, screenshot, sees_images)


OPEN = [
    ("open Safari", "Safari", "Opening Safari."),
    ("Open Safari.", "Safari", "Opening Safari."),
    ("open safari", "Safari", "Opening Safari."),
    ("launch Google Chrome", "Google Chrome", "Opening Google Chrome."),
    ("start the Calculator app", "Calculator", "Opening Calculator."),
    ("open up Spotify", "Spotify", "Opening Spotify."),
    ("Please open Notes", "Notes", "Opening Notes."),
    ("Can you please open Notes?", "Notes", "Opening Notes."),
    ("Hey Nexy, open safari please.", "Safari", "Opening Safari."),
    ("open the App Store", "App Store", "Opening App Store."),
    ("open Notes.app", "Notes", "Opening Notes."),
    ("open iTerm", "iTerm", "Opening iTerm."),
    ("start telegram", "Telegram", "Opening Telegram."),
    ("run Xcode", "Xcode", "Opening Xcode."),
    ("Открой Safari", "Safari", "Открываю Safari."),
    ("открой safari", "Safari", "Открываю Safari."),
    ("запусти телеграм", "Telegram", "Открываю Telegram."),
    ("Открой Telegram, пожалуйста", "Telegram", "Открываю Telegram."),
    ("Можешь открыть Safari?", "Safari", "Открываю Safari."),
    ("открой приложение калькулятор", "Calculator", "Открываю Calculator."),
    ("Некси, запусти Zoom", "zoom.us", "Открываю Zoom."),  # the real app name, said as "Zoom"
]

CLOSE = [
    ("close Safari", "Safari", "Closing Safari."),
    ("quit Mail", "Mail", "Closing Mail."),
    ("exit the Calculator app", "Calculator", "Closing Calculator."),
    ("please close google chrome", "Google Chrome", "Closing Google Chrome."),
    ("закрой Safari", "Safari", "Закрываю Safari."),
    ("закройте телеграм, пожалуйста", "Telegram", "Закрываю Telegram."),
    ("выйди из Zoom", "zoom.us", "Закрываю Zoom."),
]

NOT_INTENTS = [
    "how do I open a file in Python?",
    "open a file",
    "open the door",
    "open a new tab",
    "open this link",
    "open Safari and search for cats",
    "open source software is great",
    "start the timer",
    "start over",
    "run the tests",
    "close the window",
    "quit",
    "open",
    "what time is it in Tokyo",
    "what is the date of the next eclipse",
    "hello, how do neural networks learn?",
    "good night",
    "forget it",
    "forget about it",
    "remember to buy milk",
    "remember that",
    "do you remember the Titanic?",
    "what do you see as the future of AI",
    "tell me a joke",
    "what is the capital of France",
    "открой файл",
    "как открыть файл в Python?",
    "запусти таймер",
    "закрой окно",
    "который час в Токио",
    "забудь это",
    "",
    "   ",
    "?!",
]

TIME_AND_DATE = [
    ("what time is it", "It's 3:07 PM."),
    ("What time is it?", "It's 3:07 PM."),
    ("what's the time", "It's 3:07 PM."),
    ("what is the current time", "It's 3:07 PM."),
    ("tell me the time please", "It's 3:07 PM."),
    ("what time is it now", "It's 3:07 PM."),
    ("hey Nexy, what time is it?", "It's 3:07 PM."),
    ("what's the date today", "Today is Thursday, November 26."),
    ("What's the date today?", "Today is Thursday, November 26."),
    ("what day is it", "Today is Thursday, November 26."),
    ("what day is today", "Today is Thursday, November 26."),
    ("what is today's date", "Today is Thursday, November 26."),
    ("который час", "Сейчас 15:07."),
    ("Который час?", "Сейчас 15:07."),
    ("сколько времени", "Сейчас 15:07."),
    ("сколько сейчас времени", "Сейчас 15:07."),
    ("скажи, который час", "Сейчас 15:07."),
    ("какое сегодня число", "Сегодня четверг, 26 ноября."),
    ("Какое сегодня число?", "Сегодня четверг, 26 ноября."),
    ("какой сегодня день", "Сегодня четверг, 26 ноября."),
    ("какая сегодня дата", "Сегодня четверг, 26 ноября."),
]

CLOCK_FACES = [
    (datetime(2026, 1, 1, 0, 5), "It's 12:05 AM.", "Сейчас 0:05.", "Thursday, January 1"),
    (datetime(2026, 5, 4, 12, 0), "It's 12:00 PM.", "Сейчас 12:00.", "Monday, May 4"),
    (datetime(2026, 3, 8, 9, 30), "It's 9:30 AM.", "Сейчас 9:30.", "Sunday, March 8"),
    (datetime(2026, 12, 31, 23, 59), "It's 11:59 PM.", "Сейчас 23:59.", "Thursday, December 31"),
]

RU_DATES = [
    (datetime(2026, 1, 5), "Сегодня понедельник, 5 января."),
    (datetime(2026, 2, 10), "Сегодня вторник, 10 февраля."),
    (datetime(2026, 3, 4), "Сегодня среда, 4 марта."),
    (datetime(2026, 5, 8), "Сегодня пятница, 8 мая."),
    (datetime(2026, 8, 1), "Сегодня суббота, 1 августа."),
    (datetime(2026, 9, 6), "Сегодня воскресенье, 6 сентября."),
]

ZONES = [
    ("Europe/Moscow", "It's 2:30 AM.", "Today is Friday, November 27."),  # UTC+3
    ("America/New_York", "It's 6:30 PM.", "Today is Thursday, November 26."),  # UTC-5
    ("UTC", "It's 11:30 PM.", "Today is Thursday, November 26."),
]

GREETINGS = [
    ("hi", "Hi! How can I help?"),
    ("Hello!", "Hi! How can I help?"),
    ("hey Nexy", "Hi! How can I help?"),
    ("Hi there", "Hi! How can I help?"),
    ("Nexy", "Hi! How can I help?"),
    ("good morning", "Good morning! How can I help?"),
    ("Good evening, Nexy.", "Good evening! How can I help?"),
    ("привет", "Привет! Чем могу помочь?"),
    ("Привет, Некси!", "Привет! Чем могу помочь?"),
    ("здравствуй", "Здравствуйте! Чем могу помочь?"),
    ("Здравствуйте", "Здравствуйте! Чем могу помочь?"),
    ("добрый день", "Добрый день! Чем могу помочь?"),
    ("Доброе утро!", "Доброе утро! Чем могу помочь?"),
]

# (prompt, screenshot attached, model sees images, expected reply or None)
SCREEN = [
    ("what's on my screen", False, False, SCREEN_EN),
    ("What is on the screen?", False, False, SCREEN_EN),
    ("what do you see", False, False, SCREEN_EN),
    ("what can you see on my screen", True, False, SCREEN_EN),
    ("describe the screen", False, False, SCREEN_EN),
    ("read this", False, False, SCREEN_EN),
    ("can you see my screen", False, False, SCREEN_EN),
    ("что на экране", False, False, SCREEN_RU),
    ("что у меня на экране?", False, False, SCREEN_RU),
    ("что ты видишь", False, False, SCREEN_RU),
    ("прочитай", False, False, SCREEN_RU),
    ("прочитай это", False, False, SCREEN_RU),
    ("what is this", True, False, SCREEN_EN),
    ("explain this code", True, False, SCREEN_EN),
    ("what's here?", True, False, SCREEN_EN),
    ("что это", True, False, SCREEN_RU),
    ("что здесь написано", True, False, SCREEN_RU),
    ("what is this", False, False, None),  # no screenshot: "this" points nowhere
    ("is this a good idea to learn rust in my spare time", True, False, None),
    ("forget this", True, False, None),
    ("what's on my screen", True, True, None),  # a model that sees answers itself
    ("what do you see", False, True, None),
    ("что это", True, True, None),
]


@pytest.mark.parametrize(("prompt", "app", "text"), OPEN)
async def test_open_app(prompt: str, app: str, text: str) -> None:
    assert await ask(prompt) == IntentReply(text, "open_app", {"app_name": app})


@pytest.mark.parametrize(("prompt", "app", "text"), CLOSE)
async def test_close_app(prompt: str, app: str, text: str) -> None:
    assert await ask(prompt) == IntentReply(text, "close_app", {"app_name": app})


@pytest.mark.parametrize("prompt", NOT_INTENTS)
async def test_not_an_intent(prompt: str) -> None:
    assert await ask(prompt) is None


@pytest.mark.parametrize(("prompt", "text"), TIME_AND_DATE)
async def test_time_and_date(prompt: str, text: str) -> None:
    assert await ask(prompt) == IntentReply(text)


@pytest.mark.parametrize(("now", "en", "ru", "date"), CLOCK_FACES)
async def test_clock_faces(now: datetime, en: str, ru: str, date: str) -> None:
    intents = matcher(clock=now)
    assert await intents.match("what time is it", HW, False, False) == IntentReply(en)
    assert await intents.match("который час", HW, False, False) == IntentReply(ru)
    assert await intents.match("what day is it", HW, False, False) == IntentReply(
        f"Today is {date}."
    )


@pytest.mark.parametrize(("now", "text"), RU_DATES)
async def test_russian_dates(now: datetime, text: str) -> None:
    assert await matcher(clock=now).match("какое число", HW, False, False) == IntentReply(text)


@pytest.mark.parametrize(("zone", "time", "date"), ZONES)
async def test_timezone(zone: str, time: str, date: str) -> None:
    utc = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    intents = IntentMatcher(InProcessMemory(), timezone=zone, clock=lambda: utc)
    assert await intents.match("what time is it", HW, False, False) == IntentReply(time)
    assert await intents.match("what's the date", HW, False, False) == IntentReply(date)


async def test_unknown_timezone_falls_back_to_server_zone() -> None:
    intents = IntentMatcher(InProcessMemory(), timezone="Nowhere/Atlantis", clock=lambda: NOW)
    assert await intents.match("what time is it", HW, False, False) == IntentReply("It's 3:07 PM.")


@pytest.mark.parametrize(("prompt", "text"), GREETINGS)
async def test_greetings(prompt: str, text: str) -> None:
    assert await ask(prompt) == IntentReply(text)


@pytest.mark.parametrize(("prompt", "screenshot", "sees", "text"), SCREEN)
async def test_screen(prompt: str, screenshot: bool, sees: bool, text: str | None) -> None:
    reply = await ask(prompt, screenshot=screenshot, sees_images=sees)
    assert reply == (IntentReply(text) if text else None)


# (what the user says to remember, the stored fact, how recall says it back)
ROUND_TRIPS = [
    (
        "remember that my name is Alex",
        "my name is Alex",
        "what do you remember",
        "Here's what I remember: your name is Alex.",
        "forget my name",
    ),
    (
        "Remember I like jazz.",
        "I like jazz",
        "what do you know about me?",
        "Here's what I remember: you like jazz.",
        "forget that I like jazz",
    ),
    (
        "please remember that I'm allergic to nuts",
        "I'm allergic to nuts",
        "what do you remember about me",
        "Here's what I remember: you're allergic to nuts.",
        "forget about nuts",
    ),
    (
        "запомни, что я люблю джаз",
        "я люблю джаз",
        "что ты помнишь",
        "Вот что вы просили запомнить: я люблю джаз.",
        "забудь про джаз",
    ),
    (
        "Запомни: мою собаку зовут Рекс.",
        "мою собаку зовут Рекс",
        "что ты обо мне знаешь?",
        "Вот что вы просили запомнить: мою собаку зовут Рекс.",
        "забудь о собаке",
    ),
    (
        "запомни, пожалуйста, что я люблю чай",
        "я люблю чай",
        "что ты помнишь",
        "Вот что вы просили запомнить: я люблю чай.",
        "забудь про чай",
    ),
]


@pytest.mark.parametrize(("say", "fact", "recall", "spoken", "forget"), ROUND_TRIPS)
async def test_memory_round_trip(
    say: str, fact: str, recall: str, spoken: str, forget: str
) -> None:
    memory = InProcessMemory()
    ru = "Хорошо, запомню." if say[0] in "зЗ" else "Okay, I'll remember that."
    assert await ask(say, memory) == IntentReply(ru)
    assert await memory.recall(HW) == [fact]
    assert await ask(recall, memory) == IntentReply(spoken)
    forgotten = await ask(forget, memory)
    assert forgotten is not None and forgotten.text in (
        "Okay, I've forgotten that.",
        "Хорошо, это забыто.",
    )
    assert await memory.recall(HW) == []


@pytest.mark.parametrize(
    ("prompt", "text"),
    [
        ("what do you remember", "I don't remember anything about you yet."),
        ("что ты помнишь", "Я пока ничего о вас не помню."),
        ("forget everything", "There was nothing to forget."),
        ("забудь всё", "Мне нечего забывать."),
        ("forget that I like jazz", "I don't remember anything like that."),
        ("забудь, что я люблю джаз", "Я такого не помню."),
    ],
)
async def test_memory_intents_with_nothing_stored(prompt: str, text: str) -> None:
    assert await ask(prompt) == IntentReply(text)


async def test_recall_lists_facts_in_one_sentence() -> None:
    memory = InProcessMemory()
    for fact in ("my name is Alex", "I like jazz", "I live in Berlin"):
        await memory.remember(HW, fact)
    reply = await ask("what do you remember", memory)
    assert reply == IntentReply(
        "Here's what I remember: your name is Alex, you like jazz, and you live in Berlin."
    )
    ru = await ask("что ты помнишь", memory)
    assert ru == IntentReply(
        "Вот что вы просили запомнить: my name is Alex, I like jazz и I live in Berlin."
    )


async def test_recall_speaks_only_the_newest_ten() -> None:
    memory = InProcessMemory()
    for n in range(15):
        await memory.remember(HW, f"fact {n}")
    reply = await ask("what do you remember", memory)
    assert reply is not None
    assert "fact 4," not in reply.text and "fact 5, " in reply.text and "fact 14." in reply.text


@pytest.mark.parametrize(
    ("prompt", "removed_text", "left"),
    [
        ("forget everything", "Done. I've forgotten everything.", []),
        ("forget all you know about me", "Done. I've forgotten everything.", []),
        ("clear your memory", "Done. I've forgotten everything.", []),
        ("забудь всё", "Готово, память очищена.", []),
        ("забудь все", "Готово, память очищена.", []),
        ("forget jazz", "Okay, I've forgotten 2 things.", ["my name is Alex"]),
        ("забудь jazz", "Хорошо, забыто записей: 2.", ["my name is Alex"]),
        ("forget my name", "Okay, I've forgotten that.", ["I like jazz", "jazz is great"]),
        ("forget pizza", "I don't remember anything like that.", None),
    ],
)
async def test_forget_is_count_aware(
    prompt: str, removed_text: str, left: list[str] | None
) -> None:
    memory = InProcessMemory()
    facts = ["my name is Alex", "I like jazz", "jazz is great"]
    for fact in facts:
        await memory.remember(HW, fact)
    assert await ask(prompt, memory) == IntentReply(removed_text)
    assert await memory.recall(HW) == (facts if left is None else left)


@pytest.mark.parametrize(
    ("prompt", "text"),
    [
        ("remember my password is hunter2", "I won't store passwords or other secrets."),
        ("remember that my PIN is 4321", "I won't store passwords or other secrets."),
        ("remember my card 4111 1111 1111 1111", "I won't store passwords or other secrets."),
        (
            "remember my api key sk-abcdefghijklmnop1234",
            "I won't store passwords or other secrets.",
        ),
        ("запомни пароль от почты qwerty", "Я не храню пароли и другие секреты."),
        ("запомни, что мой пин-код 1234", "Я не храню пароли и другие секреты."),
        ("запомни номер карты 4111111111111111", "Я не храню пароли и другие секреты."),
    ],
)
async def test_secrets_are_refused(prompt: str, text: str) -> None:
    memory = InProcessMemory()
    assert await ask(prompt, memory) == IntentReply(text)
    assert await memory.recall(HW) == []


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("my password is hunter2", True),
        ("the wifi passcode is 1234", True),
        ("пароль от почты qwerty", True),
        ("мой пин-код 1234", True),
        ("my api key is abc", True),
        ("access token for github", True),
        ("4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        ("card 4111111111111", True),  # 13 digits
        ("sk-proj-abcdefghijklmnop", True),
        ("ghp_abcdefghijklmnopqrstuv", True),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", True),  # 40 hex digits
        ("dGhpcyBpcyBhIHNlY3JldCBibG9iIDEyMzQ1Njc4OTA=", True),  # base64
        ("I like jazz", False),
        ("my phone is +7 916 123-45-67", False),
        ("my birthday is 12.03.1990", False),
        ("I like pineapple pizza", False),
        ("my favourite word is supercalifragilisticexpialidocious", False),
        ("я люблю джаз", False),
        ("my flight is SU 2301 on Friday", False),
    ],
)
def test_looks_secret(text: str, secret: bool) -> None:
    assert looks_secret(text) is secret


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (["I like jazz", "i  LIKE jazz", " I like jazz "], ["I like jazz"]),
        (["a fact", "b fact", "a FACT"], ["b fact", "a FACT"]),  # a repeat becomes the newest
        (["one", "two", "three", "four"], ["two", "three", "four"]),  # oldest dropped
        (["", "   ", "ok"], ["ok"]),
    ],
)
async def test_memory_dedupes_and_bounds_facts(facts: list[str], expected: list[str]) -> None:
    memory = InProcessMemory(max_facts=3)
    for fact in facts:
        await memory.remember(HW, fact)
    assert await memory.recall(HW) == expected


async def test_memory_evicts_the_least_recently_written_device() -> None:
    memory = InProcessMemory(max_devices=2)
    await memory.remember("a", "fact a")
    await memory.remember("b", "fact b")
    await memory.remember("a", "fact a2")  # "a" is now the most recent
    await memory.remember("c", "fact c")
    assert [await memory.recall(d) for d in "abc"] == [["fact a", "fact a2"], [], ["fact c"]]


async def test_memory_keeps_devices_apart_and_lifecycle() -> None:
    memory = InProcessMemory()
    await memory.start()
    assert memory.status().state is State.READY
    await memory.remember("a", "I like jazz")
    assert await memory.recall("b") == []
    assert await memory.forget("b", "everything") == 0
    assert await memory.forget("a", "всё") == 1
    await memory.remember("a", "I like jazz")
    await memory.close()
    assert await memory.recall("a") == []


@pytest.mark.parametrize(("max_devices", "max_facts"), [(0, 1), (1, 0), (-1, 5)])
def test_memory_rejects_bad_bounds(max_devices: int, max_facts: int) -> None:
    with pytest.raises(ValueError):
        InProcessMemory(max_devices=max_devices, max_facts=max_facts)


class FakeLLM:
    """A tiny inner model: streams fixed fragments and records what happened."""

    name = "fake"

    def __init__(self, fragments: list[str], supports_images: bool = False) -> None:
        self.fragments = fragments
        self.supports_images = supports_images
        self.requests: list[LLMRequest] = []
        self.closed_stream = False
        self.lifecycle: list[str] = []

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        try:
            for fragment in self.fragments:
                yield fragment
        finally:
            self.closed_stream = True

    async def start(self) -> None:
        self.lifecycle.append("start")

    def status(self) -> ComponentStatus:
        return ComponentStatus(State.DEGRADED, "warming up")

    async def close(self) -> None:
        self.lifecycle.append("close")


class BareLLM:
    """An inner model with no lifecycle at all."""

    name = "bare"
    supports_images = True

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        yield "ok"


class BrokenMatcher(IntentMatcher):
    async def match(
        self, prompt: str, hardware_id: str, has_screenshot: bool, model_sees_images: bool
    ) -> IntentReply | None:
        raise RuntimeError("memory store is down")


def request(prompt: str, image: Image | None = None) -> LLMRequest:
    return LLMRequest(system="sys", user=prompt, prompt=prompt, image=image, hardware_id=HW)


async def collect(llm: IntentFirstLLM, req: LLMRequest) -> list[str]:
    async with aclosing(llm.stream(req)) as stream:
        return [fragment async for fragment in stream]


@pytest.mark.parametrize(
    ("prompt", "payload"),
    [
        (
            "open Safari",
            {"text": "Opening Safari.", "command": "open_app", "args": {"app_name": "Safari"}},
        ),
        (
            "закрой телеграм",
            {
                "text": "Закрываю Telegram.",
                "command": "close_app",
                "args": {"app_name": "Telegram"},
            },
        ),
        ("what time is it", {"text": "It's 3:07 PM."}),
        ("привет", {"text": "Привет! Чем могу помочь?"}),
    ],
)
async def test_wrapper_answers_intents_without_the_model(
    prompt: str, payload: dict[str, object]
) -> None:
    inner = FakeLLM(["never"])
    llm = IntentFirstLLM(inner, matcher())
    fragments = await collect(llm, request(prompt))
    assert len(fragments) == 1
    assert json.loads(fragments[0]) == payload
    assert "\\u" not in fragments[0]  # non-ASCII kept as is
    assert inner.requests == []


@pytest.mark.parametrize(
    ("prompt", "fragments"),
    [
        ("how do I open a file in Python?", ["Use ", "open()."]),
        ("tell me a joke", ['{"text": "Why', ' not?"}']),
        ("что такое квантовая физика", ["Это ", "наука."]),
    ],
)
async def test_wrapper_delegates_everything_else(prompt: str, fragments: list[str]) -> None:
    inner = FakeLLM(fragments)
    llm = IntentFirstLLM(inner, matcher())
    req = request(prompt)
    assert await collect(llm, req) == fragments
    assert inner.requests == [req]
    assert inner.closed_stream


@pytest.mark.parametrize(
    ("sees_images", "image", "delegated"),
    [
        (False, Image(b"png", "image/png"), False),  # honest "I can't see" locally
        (True, Image(b"png", "image/png"), True),  # a vision model describes it itself
        (False, None, True),  # no screenshot: "this" is for the model to interpret
    ],
)
async def test_wrapper_screen_answer_depends_on_inner_vision(
    sees_images: bool, image: Image | None, delegated: bool
) -> None:
    inner = FakeLLM(["model reply"], supports_images=sees_images)
    fragments = await collect(IntentFirstLLM(inner, matcher()), request("what is this?", image))
    assert (fragments == ["model reply"]) is delegated
    if not delegated:
        assert json.loads(fragments[0]) == {"text": SCREEN_EN}


async def test_wrapper_closes_inner_stream_when_consumer_stops_early() -> None:
    inner = FakeLLM(["a", "b", "c"])
    llm = IntentFirstLLM(inner, matcher())
    async with aclosing(llm.stream(request("tell me a story"))) as stream:
        assert await anext(stream) == "a"
    assert inner.closed_stream


async def test_wrapper_falls_back_to_model_when_matching_fails() -> None:
    inner = FakeLLM(["model reply"])
    llm = IntentFirstLLM(inner, BrokenMatcher(InProcessMemory()))
    assert await collect(llm, request("open Safari")) == ["model reply"]


async def test_wrapper_identity_and_lifecycle() -> None:
    inner = FakeLLM([], supports_images=True)
    llm = IntentFirstLLM(inner, matcher())
    assert (llm.name, llm.supports_images) == ("intents+fake", True)
    await llm.start()
    assert llm.status() == ComponentStatus(State.DEGRADED, "warming up")
    await llm.close()
    assert inner.lifecycle == ["start", "close"]
    bare = IntentFirstLLM(BareLLM(), matcher())
    await bare.start()
    assert bare.status().state is State.READY
    await bare.close()
    assert await collect(bare, request("tell me a joke")) == ["ok"]
