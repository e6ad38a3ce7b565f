"""Slow readers and admission per connection and per address, through real gRPC clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from nexy.providers.llm.base import LLMRequest
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from nexy.turn.tracker import peer_address
from tests.fakes.client import commit, run_turn
from tests.fakes.server import make_settings
from tests.fakes.tcp_proxy import OutageProxy

pytestmark = pytest.mark.asyncio

# About 25 s of speech: far more audio than any HTTP/2 window holds.
CHATTY = '{"text": "' + "This reply goes on and on, sentence after sentence. " * 8 + '"}'
# No BDP probing and a tiny look-ahead keep the client's receive window small, so the server's
# writes wait on this client's reads soon after the turn starts.
SMALL_WINDOW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
# Channels in one process share TCP connections unless told otherwise.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def device(n: int) -> str:
    return f"5A5A5A5A-0000-4000-8000-{n:012d}"


class HoldingLLM:
    """Prompts starting with "hold" say one sentence and then think forever; others answer."""

    name = "holding"
    supports_images = False

    async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        if not request.prompt.startswith("hold"):
            yield '{"text": "Hello there."}'
            return
        yield '{"text": "Working on it. '
        yield "Still"  # what follows the full stop tells the segmenter the sentence ended
        await asyncio.Event().wait()


async def test_peer_address_drops_only_the_port() -> None:
    assert peer_address("ipv4:10.1.2.3:5678") == "ipv4:10.1.2.3"
    assert peer_address("ipv6:[::1]:5678") == "ipv6:[::1]"
    assert peer_address("unix:/tmp/nexy.sock") == "unix:/tmp/nexy.sock"


async def _first_kinds(calls: list[grpc.aio.UnaryStreamCall]) -> list[str]:
    firsts = await asyncio.gather(*(call.read() for call in calls))
    return [first.WhichOneof("content") or "" for first in firsts]


async def test_a_connection_may_run_four_turns_at_once_not_five(server_factory):
    server = await server_factory(make_settings(), llm=HoldingLLM())
    calls = [server.stub.StreamAudio(commit("hold on", hardware_id=device(i))) for i in range(5)]
    try:
        kinds = await _first_kinds(calls)
        assert sorted(kinds) == ["error_message"] + ["text_chunk"] * 4
        refused = calls[kinds.index("error_message")]
        assert (await refused.code()) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await refused.details()).startswith("STREAM_LIMIT_EXCEEDED")
        assert server.app.tracker.active == 4
        sample = server.app.metrics.registry.get_sample_value
        assert sample("nexy_rejections_total", {"reason": "connection_limit"}) == 1
        # Another connection (another channel) is admitted meanwhile.
        address = f"127.0.0.1:{server.app.grpc_port}"
        async with grpc.aio.insecure_channel(address, options=OWN_CONNECTION) as channel:
            other = await run_turn(pb_grpc.StreamingServiceStub(channel), commit("hi"))
        assert other.ended and other.text == "Hello there.", (other.code, other.details)
    finally:
        for call in calls:
            call.cancel()


async def test_slow_streams_from_one_address_leave_room_for_other_clients(server_factory):
    settings = make_settings(
        **{"limits.max_concurrent_turns": 6, "limits.max_turns_per_address": 4}
    )
    server = await server_factory(settings, llm=HoldingLLM())
    # The proxy connects to the server from 127.0.0.2: another client address on one machine.
    proxy = OutageProxy("127.0.0.1", server.app.grpc_port, source_host="127.0.0.2")
    await proxy.start()
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}", options=OWN_CONNECTION)
        for _ in range(3)
    ]
    stubs = [pb_grpc.StreamingServiceStub(channel) for channel in channels]
    calls = [stubs[i % 3].StreamAudio(commit("hold on", hardware_id=device(i))) for i in range(9)]
    try:
        kinds = await _first_kinds(calls)  # then never read again: slow readers
        assert kinds.count("text_chunk") == 4 and kinds.count("error_message") == 5
        sample = server.app.metrics.registry.get_sample_value
        assert sample("nexy_rejections_total", {"reason": "address_limit"}) == 5
        for _ in range(3):  # a well-behaved client from 127.0.0.1 keeps being served
            result = await run_turn(server.stub, commit("hi", hardware_id=device(99)))
            assert result.ended and result.text == "Hello there."
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()
        await proxy.close()


async def test_a_client_reading_slower_than_real_time_is_ended(server_factory):
    settings = make_settings(
        **{
            "limits.slow_reader_seconds": 1.0,
            "limits.idle_timeout_seconds": 30,
            "llm.scripted.reply": CHATTY,
            "tts.coalesce_ms": 0,  # 100 ms per message, so the pace below is 0.4 s of audio/s
        }
    )
    server = await server_factory(settings)
    address = f"127.0.0.1:{server.app.grpc_port}"
    async with grpc.aio.insecure_channel(address, options=SMALL_WINDOW) as channel:
        call = pb_grpc.StreamingServiceStub(channel).StreamAudio(commit("talk"))
        read = 0
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(20):  # the whole reply at this pace would take ~60 s
                while await call.read() is not grpc.aio.EOF:
                    read += 1
                    await asyncio.sleep(0.25)  # 4 messages (0.4 s of audio) per second
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "slower than it plays" in (ended.value.details() or "")
    assert read < 100
    assert server.app.tracker.active == 0
    sample = server.app.metrics.registry.get_sample_value
    assert sample("nexy_slow_readers_total") == 1
    assert sample("nexy_turns_total", {"outcome": "interrupted"}) == 1
    await server.app.settle()
    turns = (await server.app.repository.export_device(commit("").hardware_id))["turns"]
    assert [turn["outcome"] for turn in turns] == ["interrupted"]


async def test_a_turn_slow_because_of_the_server_is_not_a_slow_reader(server_factory):
    # Speech synthesized at half real-time speed: wall time since the first audio grows far
    # past the audio sent plus the lead, but the client reads everything at once.
    settings = make_settings(
        **{
            "limits.slow_reader_seconds": 0.5,
            "llm.scripted.reply": '{"text": "Hello there, my friend."}',
            "tts.scripted.realtime_factor": 2.0,
        }
    )
    server = await server_factory(settings)
    result = await run_turn(server.stub, commit("hi"))
    assert result.ended, (result.code, result.details)
    assert result.total_s > 2.0  # the turn really was slower than real time
    assert server.app.metrics.registry.get_sample_value("nexy_slow_readers_total") == 0
