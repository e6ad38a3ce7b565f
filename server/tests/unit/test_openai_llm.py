"""Tests for the OpenAI-compatible provider against a local fake of the chat completions API."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from nexy.components import Component, State
from nexy.config import OpenAISettings
from nexy.providers.llm.base import (
    Exchange,
    Image,
    LLMError,
    LLMProvider,
    LLMRequest,
    MemoryContext,
)
from nexy.providers.llm.openai_compat import OpenAICompatLLM
from tests.fakes.openai_server import BAD_KEY, GOOD_KEY, FakeOpenAI, running

SYSTEM = "Reply with one JSON object."
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256))


def request(image: Image | None = None) -> LLMRequest:
    return LLMRequest(
        system=SYSTEM, user="Memory: none.\nWhat is this?", prompt="What is this?", image=image
    )


@asynccontextmanager
async def openai(
    fake: FakeOpenAI | None = None, **overrides: Any
) -> AsyncIterator[OpenAICompatLLM]:
    values: dict[str, Any] = {
        "api_key": SecretStr(GOOD_KEY),
        "base_url": fake.base_url if fake else "http://127.0.0.1:9/v1",
        "model": "gpt-test",
        "temperature": 0.2,
        "max_tokens": 80,
    }
    llm = OpenAICompatLLM(OpenAISettings(**(values | overrides)))
    await llm.start()
    try:
        yield llm
    finally:
        await llm.close()


async def collect(llm: OpenAICompatLLM, req: LLMRequest | None = None) -> list[str]:
    return [text async for text in llm.stream(req or request())]


def assert_no_key(error: BaseException) -> None:
    assert GOOD_KEY not in str(error) and BAD_KEY not in str(error)
    assert error.__cause__ is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_fragments_stream_in_order_as_they_arrive() -> None:
    async with running(FakeOpenAI(delay=0.05)) as fake, openai(fake) as llm:
        fragments: list[str] = []
        sent_at_first = -1
        async for text in llm.stream(request()):
            if not fragments:
                sent_at_first = len(fake.sent)
            fragments.append(text)
    assert fragments == fake.chunks  # the role chunk's empty content is not a fragment
    assert sent_at_first < len(fake.chunks)  # the first arrived before the last was sent


async def test_request_carries_model_settings_system_prompt_and_screenshot() -> None:
    async with running(FakeOpenAI()) as fake, openai(fake) as llm:
        await collect(llm, request(Image(JPEG, "image/jpeg")))
    [seen] = fake.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == f"Bearer {GOOD_KEY}"
    body = seen.body
    assert body["model"] == "gpt-test" and body["stream"] is True
    assert body["temperature"] == 0.2 and body["max_tokens"] == 80
    assert body["stream_options"] == {"include_usage": True}
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM}
    assert user["role"] == "user"
    text, image = user["content"]
    assert text == {"type": "text", "text": request().user}
    assert image["type"] == "image_url"
    prefix, _, data = image["image_url"]["url"].partition(",")
    assert prefix == "data:image/jpeg;base64"
    assert base64.b64decode(data, validate=True) == JPEG


async def test_memory_arrives_as_facts_in_the_system_message_and_history_as_turns() -> None:
    memory = MemoryContext(
        ("The user's name is Alex.",),
        (Exchange("Hi there", "Hello Alex!"), Exchange("I like jazz", "Great taste.")),
    )
    req = LLMRequest(system=SYSTEM, user="Who am I?", prompt="Who am I?", memory=memory)
    async with running(FakeOpenAI()) as fake, openai(fake) as llm:
        await collect(llm, req)
    assert fake.requests[0].body["messages"] == [
        {
            "role": "system",
            "content": f"{SYSTEM}\n\nWhat you know about this user:\n- The user's name is Alex.",
        },
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello Alex!"},
        {"role": "user", "content": "I like jazz"},
        {"role": "assistant", "content": "Great taste."},
        {"role": "user", "content": "Who am I?"},
    ]


async def test_text_only_request_sends_plain_content() -> None:
    async with running(FakeOpenAI()) as fake, openai(fake) as llm:
        await collect(llm)
    assert fake.requests[0].body["messages"][1] == {"role": "user", "content": request().user}


async def test_no_key_sends_no_authorization_but_extra_headers() -> None:
    fake = FakeOpenAI(valid_keys=None)  # Ollama, llama.cpp and LM Studio ask for no key
    async with (
        running(fake),
        openai(fake, api_key=SecretStr(""), headers={"X-Title": "Nexy"}) as llm,
    ):
        assert await collect(llm) == fake.chunks
    headers = fake.requests[0].headers
    assert "Authorization" not in headers and headers["X-Title"] == "Nexy"


async def test_base_url_with_trailing_slash() -> None:
    async with running(FakeOpenAI()) as fake, openai(fake, base_url=fake.base_url + "/") as llm:
        assert await collect(llm) == fake.chunks


async def test_usage_of_the_final_chunk_goes_to_the_request_meter() -> None:
    async with running(FakeOpenAI(usage=(250, 12))) as fake, openai(fake) as llm:
        req = request()
        await collect(llm, req)
    assert (req.meter.input_tokens, req.meter.output_tokens) == (250, 12)
    assert req.meter.reported and req.meter.model == "gpt-test"


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "refused the API key"),
        (404, "no such model"),
        (500, "server error"),
        (503, "server error"),
    ],
)
async def test_http_errors_fail_at_once_without_the_body(status: int, words: str) -> None:
    fake = FakeOpenAI(status=None if status == 401 else status)
    key = BAD_KEY if status == 401 else GOOD_KEY
    async with running(fake), openai(fake, api_key=SecretStr(key)) as llm:
        with pytest.raises(LLMError, match=words) as caught:
            await collect(llm)
    assert f"HTTP {status}" in str(caught.value)
    assert len(fake.requests) == 1
    assert_no_key(caught.value)


async def test_rate_limit_fails_at_once() -> None:
    async with running(FakeOpenAI(status=429)) as fake, openai(fake) as llm:
        began = time.perf_counter()
        with pytest.raises(LLMError, match="HTTP 429") as caught:
            await collect(llm)
        assert time.perf_counter() - began < 0.5
    assert len(fake.requests) == 1
    assert_no_key(caught.value)


async def test_unreachable_server_fails_at_once() -> None:
    async with openai(base_url=f"http://127.0.0.1:{free_port()}/v1") as llm:
        began = time.perf_counter()
        with pytest.raises(LLMError, match="unreachable") as caught:
            await collect(llm)
        assert time.perf_counter() - began < 0.5
    assert_no_key(caught.value)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("data: {not json", "malformed"),
        ('data: ["a list"]', "malformed"),
        ('data: {"choices": "nope"}', "malformed"),
        ('data: {"error": {"message": "overloaded", "type": "server_error"}}', "reported an error"),
        (": keep-alive, then the body ends", "ended early"),
    ],
)
async def test_broken_streams_fail_after_the_text_so_far(raw: str, words: str) -> None:
    async with running(FakeOpenAI(raw_after=(2, raw))) as fake, openai(fake) as llm:
        fragments: list[str] = []
        with pytest.raises(LLMError, match=words):
            async for text in llm.stream(request()):
                fragments.append(text)
    assert fragments == fake.chunks[:2]


async def test_closing_the_stream_disconnects_upstream() -> None:
    fake = FakeOpenAI(chunks=[f"word{i} " for i in range(20)], delay=0.05)
    async with running(fake), openai(fake) as llm:
        replies = llm.stream(request())
        assert await anext(replies) == "word0 "
        await replies.aclose()
        await asyncio.wait_for(fake.disconnected.wait(), 1.0)
    assert len(fake.sent) < len(fake.chunks)


async def test_cancelling_the_reader_disconnects_upstream() -> None:
    fake = FakeOpenAI(chunks=[f"word{i} " for i in range(20)], delay=0.05)
    async with running(fake), openai(fake) as llm:
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


async def test_connection_is_reused_after_a_complete_reply() -> None:
    async with running(FakeOpenAI()) as fake, openai(fake) as llm:
        assert await collect(llm) == await collect(llm) == fake.chunks
    first, second = fake.requests
    assert first.peer == second.peer


async def test_openais_own_endpoint_without_a_key_fails_start() -> None:
    llm = OpenAICompatLLM(OpenAISettings())  # https://api.openai.com/v1 refuses keyless calls
    with pytest.raises(LLMError, match="NEXY_LLM__OPENAI__API_KEY"):
        await llm.start()
    assert llm.status().state is State.DOWN


async def test_lifecycle_and_protocol() -> None:
    # A local OpenAI-compatible server (Ollama, vLLM) needs no key.
    llm = OpenAICompatLLM(OpenAISettings(base_url="http://127.0.0.1:11434/v1"))
    provider: LLMProvider = llm  # checked statically: the protocol is not runtime-checkable
    assert isinstance(llm, Component) and provider.supports_images and provider.name == "openai"
    assert llm.status().state is State.DOWN
    with pytest.raises(LLMError, match="not started"):
        await collect(llm)
    await llm.start()
    assert llm.status().state is State.READY
    await llm.close()
    await llm.close()
    assert llm.status().state is State.DOWN
    with pytest.raises(LLMError, match="not started"):
        await collect(llm)


async def test_key_from_file(tmp_path: Path) -> None:
    file = tmp_path / "openai.key"
    file.write_text(f"  {GOOD_KEY}\n")
    async with (
        running(FakeOpenAI()) as fake,
        openai(fake, api_key=SecretStr(""), api_key_file=file) as llm,
    ):
        await collect(llm)
    assert fake.requests[0].headers["Authorization"] == f"Bearer {GOOD_KEY}"


async def test_unreadable_key_file_fails_start(tmp_path: Path) -> None:
    llm = OpenAICompatLLM(OpenAISettings(api_key_file=tmp_path / "absent.key"))
    with pytest.raises(LLMError, match="absent.key"):
        await llm.start()
    assert llm.status().state is State.DOWN
