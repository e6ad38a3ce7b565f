"""Tests for the Gemini provider, run through the real SDK against a local fake of Google's API."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from pydantic import SecretStr

from nexy.components import Component, State
from nexy.config import GeminiSettings
from nexy.providers.llm.base import (
    Exchange,
    Image,
    LLMError,
    LLMProvider,
    LLMRequest,
    MemoryContext,
)
from nexy.providers.llm.gemini import GeminiLLM
from tests.fakes.gemini_server import BACKUP_KEY, BAD_KEY, GOOD_KEY, FakeGemini, running

SYSTEM = "Reply with one JSON object."
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
KEYS = (GOOD_KEY, BACKUP_KEY, BAD_KEY)


def request(image: Image | None = None) -> LLMRequest:
    return LLMRequest(
        system=SYSTEM, user="Memory: none.\nWhat is this?", prompt="What is this?", image=image
    )


@asynccontextmanager
async def gemini(fake: FakeGemini | None = None, **overrides: Any) -> AsyncIterator[GeminiLLM]:
    values: dict[str, Any] = {
        "api_key": SecretStr(GOOD_KEY),
        "base_url": fake.base_url if fake else "",
        "model": "gemini-test",
        "temperature": 0.3,
        "max_output_tokens": 64,
    }
    llm = GeminiLLM(GeminiSettings(**(values | overrides)))
    await llm.start()
    try:
        yield llm
    finally:
        await llm.close()


async def collect(llm: GeminiLLM, req: LLMRequest | None = None) -> list[str]:
    return [text async for text in llm.stream(req or request())]


def assert_no_key(error: BaseException) -> None:
    for key in KEYS:
        assert key not in str(error)
    assert error.__cause__ is None and error.__suppress_context__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_fragments_stream_in_order_as_they_arrive() -> None:
    async with running(FakeGemini(delay=0.05)) as fake, gemini(fake) as llm:
        fragments: list[str] = []
        sent_at_first = -1
        async for text in llm.stream(request()):
            if not fragments:
                sent_at_first = len(fake.sent)
            fragments.append(text)
    assert fragments == fake.chunks
    assert sent_at_first < len(fake.chunks)  # the first arrived before the last was sent


async def test_request_carries_model_settings_system_prompt_and_screenshot() -> None:
    async with running(FakeGemini()) as fake, gemini(fake) as llm:
        await collect(llm, request(Image(PNG, "image/png", 640, 480)))
    [seen] = fake.requests
    assert seen.path == "/v1beta/models/gemini-test:streamGenerateContent"
    assert seen.query == {"alt": "sse"} and seen.api_key == GOOD_KEY
    body = seen.body
    assert body["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    config = body["generationConfig"]
    assert thinking_budget(config) == 0  # no thinking before the first word
    assert config == {"temperature": 0.3, "maxOutputTokens": 64, "thinkingConfig": ANY}
    [turn] = body["contents"]
    assert turn["role"] == "user"
    text, image = turn["parts"]
    assert text == {"text": request().user}
    blob = image["inlineData"]
    assert blob.get("mimeType", blob.get("mime_type")) == "image/png"
    # The SDK sends URL-safe base64; Google's JSON parser takes either alphabet.
    assert base64.urlsafe_b64decode(blob["data"]) == PNG


async def test_memory_arrives_as_facts_in_the_instruction_and_history_as_turns() -> None:
    memory = MemoryContext(
        ("The user's name is Alex.",),
        (Exchange("Hi there", "Hello Alex!"), Exchange("I like jazz", "Great taste.")),
    )
    req = LLMRequest(system=SYSTEM, user="Who am I?", prompt="Who am I?", memory=memory)
    async with running(FakeGemini()) as fake, gemini(fake) as llm:
        await collect(llm, req)
    body = fake.requests[0].body
    assert body["systemInstruction"]["parts"] == [
        {"text": f"{SYSTEM}\n\nWhat you know about this user:\n- The user's name is Alex."}
    ]
    assert [(turn["role"], turn["parts"]) for turn in body["contents"]] == [
        ("user", [{"text": "Hi there"}]),
        ("model", [{"text": "Hello Alex!"}]),
        ("user", [{"text": "I like jazz"}]),
        ("model", [{"text": "Great taste."}]),
        ("user", [{"text": "Who am I?"}]),
    ]


async def test_text_only_request_has_one_part() -> None:
    async with running(FakeGemini()) as fake, gemini(fake) as llm:
        await collect(llm)
    assert fake.requests[0].body["contents"][0]["parts"] == [{"text": request().user}]


async def test_usage_of_the_last_chunk_goes_to_the_request_meter() -> None:
    async with running(FakeGemini(usage=(120, 15))) as fake, gemini(fake) as llm:
        first, second = request(), request()
        await collect(llm, first)
        await collect(llm, second)
    for req in (first, second):  # each request its own counts: concurrent turns never mix
        assert (req.meter.input_tokens, req.meter.output_tokens) == (120, 15)
        assert req.meter.reported and req.meter.model == "gemini-test"


@pytest.mark.parametrize("refusal", [400, 401, 403])
async def test_backup_key_replaces_a_refused_key_and_is_kept(refusal: int) -> None:
    fake = FakeGemini(valid_keys={BACKUP_KEY}, key_error_status=refusal)
    async with (
        running(fake),
        gemini(fake, api_key=SecretStr(BAD_KEY), backup_api_key=SecretStr(BACKUP_KEY)) as llm,
    ):
        assert await collect(llm) == fake.chunks
        assert [seen.api_key for seen in fake.requests] == [BAD_KEY, BACKUP_KEY]
        await collect(llm)
    assert [seen.api_key for seen in fake.requests] == [BAD_KEY, BACKUP_KEY, BACKUP_KEY]


async def test_backup_key_unused_while_the_first_works() -> None:
    async with (
        running(FakeGemini()) as fake,
        gemini(fake, backup_api_key=SecretStr(BACKUP_KEY)) as llm,
    ):
        await collect(llm)
        await collect(llm)
    assert [seen.api_key for seen in fake.requests] == [GOOD_KEY, GOOD_KEY]


async def test_both_keys_refused_is_an_error_without_the_keys() -> None:
    fake = FakeGemini(valid_keys=set(), echo_key=True)
    async with (
        running(fake),
        gemini(fake, api_key=SecretStr(BAD_KEY), backup_api_key=SecretStr(BACKUP_KEY)) as llm,
    ):
        with pytest.raises(LLMError, match="refused") as caught:
            await collect(llm)
    assert len(fake.requests) == 2
    assert_no_key(caught.value)


async def test_quota_error_fails_at_once_without_retry_or_backup() -> None:
    fake = FakeGemini(status=429, echo_key=True)
    async with running(fake), gemini(fake, backup_api_key=SecretStr(BACKUP_KEY)) as llm:
        began = time.perf_counter()
        with pytest.raises(LLMError, match="429 RESOURCE_EXHAUSTED") as caught:
            await collect(llm)
        assert time.perf_counter() - began < 0.5
    assert len(fake.requests) == 1
    assert_no_key(caught.value)
    assert fake.base_url not in str(caught.value)


@pytest.mark.parametrize("status", [500, 503])
async def test_server_error_fails_at_once(status: int) -> None:
    async with running(FakeGemini(status=status, echo_key=True)) as fake, gemini(fake) as llm:
        with pytest.raises(LLMError, match=str(status)) as caught:
            await collect(llm)
    assert len(fake.requests) == 1
    assert_no_key(caught.value)


async def test_unreachable_server_fails_at_once() -> None:
    port = free_port()
    async with gemini(base_url=f"http://127.0.0.1:{port}") as llm:
        began = time.perf_counter()
        with pytest.raises(LLMError, match="unreachable") as caught:
            await collect(llm)
        assert time.perf_counter() - began < 0.5
    assert_no_key(caught.value)
    assert str(port) not in str(caught.value)


async def test_closing_the_stream_disconnects_upstream() -> None:
    fake = FakeGemini(chunks=[f"word{i} " for i in range(20)], delay=0.05)
    async with running(fake), gemini(fake) as llm:
        replies = llm.stream(request())
        assert await anext(replies) == "word0 "
        await replies.aclose()
        await asyncio.wait_for(fake.disconnected.wait(), 1.0)
    assert len(fake.sent) < len(fake.chunks)


async def test_cancelling_the_reader_disconnects_upstream() -> None:
    fake = FakeGemini(chunks=[f"word{i} " for i in range(20)], delay=0.05)
    async with running(fake), gemini(fake) as llm:
        first = asyncio.Event()

        async def read() -> None:
            async for _ in llm.stream(request()):
                first.set()

        task = asyncio.create_task(read())
        await asyncio.wait_for(first.wait(), 1.0)
        task.cancel()
        await asyncio.wait([task])
        await asyncio.wait_for(fake.disconnected.wait(), 1.0)
    assert task.cancelled()
    assert len(fake.sent) < len(fake.chunks)


async def test_lifecycle_and_protocol() -> None:
    llm = GeminiLLM(GeminiSettings(api_key=SecretStr(GOOD_KEY)))
    provider: LLMProvider = llm  # checked statically: the protocol is not runtime-checkable
    assert isinstance(llm, Component) and provider.supports_images and provider.name == "gemini"
    assert llm.status().state is State.DOWN
    with pytest.raises(LLMError, match="not started"):
        await collect(llm)
    await llm.start()
    assert llm.status().state is State.READY
    await llm.close()
    await llm.close()
    assert llm.status().state is State.DOWN


async def test_start_without_any_key_fails() -> None:
    llm = GeminiLLM(GeminiSettings())
    with pytest.raises(LLMError, match="no API key"):
        await llm.start()
    assert llm.status().state is State.DOWN


async def test_key_from_file(tmp_path: Path) -> None:
    file = tmp_path / "gemini.key"
    file.write_text(GOOD_KEY + "\n")
    async with (
        running(FakeGemini()) as fake,
        gemini(fake, api_key=SecretStr(""), api_key_file=file) as llm,
    ):
        await collect(llm)
    assert fake.requests[0].api_key == GOOD_KEY


async def test_unreadable_key_file_fails_start(tmp_path: Path) -> None:
    llm = GeminiLLM(GeminiSettings(api_key_file=tmp_path / "absent.key"))
    with pytest.raises(LLMError, match="absent.key"):
        await llm.start()


def thinking_budget(generation_config: dict[str, Any]) -> int | None:
    """The budget as sent; the SDK writes this field in snake case, which Google's JSON takes."""
    thinking = generation_config.get("thinkingConfig")
    if thinking is None:
        return None
    budget: int = thinking.get("thinkingBudget", thinking.get("thinking_budget"))
    return budget


@pytest.mark.parametrize("budget", [-1, 200, None])
async def test_thinking_budget_is_sent_as_configured(budget: int | None) -> None:
    async with running(FakeGemini()) as fake, gemini(fake, thinking_budget=budget) as llm:
        await collect(llm)
    assert thinking_budget(fake.requests[0].body["generationConfig"]) == budget
