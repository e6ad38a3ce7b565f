"""A flood of uncached greetings is refused fast and never takes speech away from turns."""

from __future__ import annotations

import asyncio
import time

import grpc

from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import commit, run_turn
from tests.fakes.server import make_settings


async def _welcome(stub, text: str) -> tuple[grpc.StatusCode, float, list[pb.WelcomeResponse]]:
    started = time.perf_counter()
    call = stub.GenerateWelcomeAudio(pb.WelcomeRequest(text=text, session_id="welcome_1"))
    replies: list[pb.WelcomeResponse] = []
    try:
        async for reply in call:
            replies.append(reply)
    except grpc.aio.AioRpcError:
        pass  # the status is read below; the error_message before it is in replies
    return await call.code(), time.perf_counter() - started, replies


async def test_uncached_greetings_beyond_the_limit_are_refused_at_once(server_factory):
    settings = make_settings(
        **{"tts.scripted.first_chunk_ms": 400, "limits.max_concurrent_welcome": 2}
    )
    server = await server_factory(settings)
    results = await asyncio.gather(
        *(_welcome(server.stub, f"Welcome number {n}.") for n in range(8))
    )
    codes = [code for code, _, _ in results]
    assert codes.count(grpc.StatusCode.OK) == 2
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 6
    for code, seconds, replies in results:
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            assert seconds < 0.3  # refused, not queued behind the engine
            assert replies[-1].error_message.startswith("WELCOME_LIMIT_EXCEEDED")
    # The default greeting was synthesized at start: a cached request is never refused.
    code, _, replies = await _welcome(server.stub, "")
    assert code is grpc.StatusCode.OK and replies[-1].end_message == "completed"
    # Turns still speak, and the shared voice engine's breaker never opened.
    result = await run_turn(server.stub, commit("hello"))
    assert result.is_spoken_turn() and result.audio
    assert all(stats.state == "healthy" for stats in server.app.provider_stats()["tts"])
