"""A cancelled turn stops its speech: the real engines are free again at once, not after the reply.

Piper and eSpeak NG each run on one worker thread shared by every turn and greeting. If a turn
the client cancelled kept its sentences queued or synthesizing there, the next user would wait
behind speech nobody hears (and, past the 3 s first-audio limit, trip the TTS breaker).
"""

from __future__ import annotations

import time

import grpc
import pytest

from nexy.config_loading import load_settings
from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import commit

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]

# About 1,700 characters in 24 short sentences: 1.5 minutes of speech, seconds of synthesis.
LONG_REPLY = " ".join(
    f"This is sentence number {n} of a long answer that nobody is listening to." for n in range(24)
)


@pytest.fixture
async def speech_server(server_factory):
    # The embedded speech defaults (Piper for English, eSpeak NG as its fallback) and an LLM
    # that echoes the prompt at once: the whole long reply is ready before the first audio.
    settings = load_settings(
        env={},
        overrides={
            "llm.provider": "scripted",
            "llm.scripted.mode": "echo",
            "llm.intents.enabled": False,
            "server.host": "127.0.0.1",
        },
    )
    return await server_factory(settings)


async def _welcome_seconds(stub, text: str) -> float:
    """How long an uncached greeting takes to arrive in full (it must be served)."""
    started = time.perf_counter()
    replies = [r async for r in stub.GenerateWelcomeAudio(pb.WelcomeRequest(text=text))]
    assert replies[-1].WhichOneof("content") == "end_message"
    return time.perf_counter() - started


async def _full_turn_seconds(stub, prompt: str) -> float:
    started = time.perf_counter()
    kinds = [r.WhichOneof("content") async for r in stub.StreamAudio(commit(prompt), timeout=120)]
    assert kinds[-1] == "end_message" and "audio_chunk" in kinds
    return time.perf_counter() - started


async def test_a_cancelled_turn_frees_the_speech_engines_at_once(speech_server):
    stub = speech_server.stub
    idle = await _welcome_seconds(stub, "Good morning, this is the first greeting.")
    full = await _full_turn_seconds(stub, LONG_REPLY)
    assert full > 5 * idle + 2.0, (full, idle)  # the reply's speech is long enough to notice

    call = stub.StreamAudio(commit(LONG_REPLY.replace("long", "lengthy")), timeout=120)
    async for reply in call:
        if reply.WhichOneof("content") == "audio_chunk":
            break
    call.cancel()
    assert await call.code() == grpc.StatusCode.CANCELLED

    # A greeting right after the cancel waits at most for the sentence in flight.
    after = await _welcome_seconds(stub, "Good morning, this is the second greeting.")
    assert after < idle + 1.5, (after, idle, full)
