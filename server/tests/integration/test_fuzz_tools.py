"""The abuse tools of issue 11: ``fuzz_smoke.py`` and ``slow_readers.py`` (nexy.toolkit).

The classifier must catch what a broken server does (a stream without a terminal message,
UNKNOWN, leaked internals, undecodable answers), the generator must really send what Python
strings cannot carry, and a small bounded round against the real server must come out clean.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError

from nexy.toolkit.connection import target
from nexy.toolkit.fuzz import FuzzOptions, run_call, run_fuzz
from nexy.toolkit.fuzz_cases import (
    INTERRUPT,
    STREAM_AUDIO,
    USAGE,
    WELCOME,
    Call,
    commit_fields,
    encode,
    welcome_fields,
)
from nexy.toolkit.fuzz_families import FAMILIES, generate
from nexy.toolkit.fuzz_launch import PER_ADDRESS_ENV, launch_env
from nexy.toolkit.fuzz_report import BAD, EXPECTED, OK, Outcome, classify
from nexy.toolkit.slow_readers import SlowOptions, run_slow_readers
from nexy.toolkit.source_relay import SourceRelay, relay_possible
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc.device_rpcs import WELCOME_BUSY_TEXT
from tests.fakes.server import make_settings


def _stream_response(**fields: Any) -> bytes:
    return bytes(pb.StreamResponse(**fields).SerializeToString())


async def _no_terminal(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield _stream_response(text_chunk="Hi.")  # then ends OK: the client would hang or fail


async def _leaky_welcome(request: bytes, context: Any) -> AsyncIterator[bytes]:
    text = 'Traceback (most recent call last): File "/app/nexy/tts.py", UnicodeDecodeError'
    yield bytes(pb.WelcomeResponse(error_message=text).SerializeToString())


async def _crash(request: bytes, context: Any) -> bytes:
    raise RuntimeError("boom")  # grpc turns an unhandled exception into UNKNOWN


async def _garbage(request: bytes, context: Any) -> bytes:
    return b"\x0a\xff\xff\xff"  # a length running past the end: not a message


@pytest.fixture
async def broken_server() -> AsyncIterator[grpc.aio.Channel]:
    """A server that breaks every rule the fuzz checks, one RPC per rule."""
    handlers = {
        STREAM_AUDIO: grpc.unary_stream_rpc_method_handler(_no_terminal),
        WELCOME: grpc.unary_stream_rpc_method_handler(_leaky_welcome),
        INTERRUPT: grpc.unary_unary_rpc_method_handler(_crash),
        USAGE: grpc.unary_unary_rpc_method_handler(_garbage),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("streaming.StreamingService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    await channel.close()
    await server.stop(0)


def _calls() -> dict[str, Call]:
    return {
        STREAM_AUDIO: Call(STREAM_AUDIO, encode(commit_fields(random.Random(1)))),
        WELCOME: Call(WELCOME, encode(welcome_fields())),
        INTERRUPT: Call(INTERRUPT, b"\x0a\x03abc"),
        USAGE: Call(USAGE, b""),
    }


async def test_the_classifier_catches_a_broken_server(broken_server):
    reasons = {}
    for rpc, call in _calls().items():
        outcome = await run_call(broken_server, call, 10)
        verdict, reasons[rpc] = classify(outcome, call.must_refuse, frozenset())
        assert verdict == BAD, (rpc, reasons[rpc])
    assert "without end_message" in reasons[STREAM_AUDIO]
    assert "internals" in reasons[WELCOME]
    assert reasons[INTERRUPT].startswith("status UNKNOWN")
    assert "not a valid protobuf" in reasons[USAGE]


async def test_the_same_calls_pass_against_the_real_server(server):
    for call in _calls().values():
        outcome = await run_call(server.channel, call, 15)
        assert classify(outcome, call.must_refuse, frozenset())[0] in (OK, EXPECTED), outcome


def test_classifier_rules():
    served = Outcome(STREAM_AUDIO, "OK", kinds=["text_chunk", "audio_chunk", "end_message"])
    assert classify(served, False, frozenset()) == (OK, "OK")
    assert classify(served, True, frozenset())[0] == BAD  # spec says refuse, it was served
    refused = Outcome(STREAM_AUDIO, "INVALID_ARGUMENT", kinds=["error_message"])
    assert classify(refused, True, frozenset()) == (EXPECTED, "INVALID_ARGUMENT")
    barged_in = Outcome(STREAM_AUDIO, "OK", kinds=["text_chunk"], cancelled_by_tool=True)
    assert classify(barged_in, False, frozenset())[0] == OK
    assert classify(Outcome(USAGE, "INTERNAL"), False, frozenset())[0] == BAD
    assert classify(Outcome(USAGE, "UNAVAILABLE"), False, frozenset())[0] == BAD
    assert classify(Outcome(USAGE, "UNAVAILABLE"), False, frozenset({"UNAVAILABLE"}))[0] == EXPECTED
    plain = Outcome(WELCOME, "INVALID_ARGUMENT", texts=["voice is not supported"])
    assert classify(plain, False, frozenset())[0] == EXPECTED


def test_a_greeting_refused_by_the_welcome_limit_is_an_expected_answer():
    # The server's own wording (device_rpcs): a reword that looks like leaked internals (an
    # exception class, a path) would turn every refused greeting of a flood into a finding.
    busy = WELCOME_BUSY_TEXT.format(limit=2)
    refused = Outcome(WELCOME, "RESOURCE_EXHAUSTED", busy, kinds=["error_message"], texts=[busy])
    assert busy.startswith("WELCOME_LIMIT_EXCEEDED")
    assert classify(refused, False, frozenset()) == (EXPECTED, "RESOURCE_EXHAUSTED")


def test_the_generator_is_seeded_and_sends_what_python_strings_cannot():
    first = [case for _, case in zip(range(400), generate(7, 8000), strict=False)]
    again = [case for _, case in zip(range(400), generate(7, 8000), strict=False)]
    assert first == again  # a failure can be replayed with the same --seed
    assert {case.family for case in first} == set(FAMILIES)
    calls = [call for case in first for call in case.calls]
    assert {call.rpc for call in calls} == {STREAM_AUDIO, WELCOME, INTERRUPT, USAGE}
    undecodable = 0
    for call in calls:
        if call.rpc == STREAM_AUDIO and len(call.payload) < 1_000_000:
            try:
                pb.StreamRequest.FromString(call.payload)
            except DecodeError:
                undecodable += 1  # invalid UTF-8 or broken wire format: only raw bytes do this
    assert undecodable >= 5


async def test_a_small_fuzz_round_against_the_real_server_is_clean(server_factory):
    running = await server_factory(make_settings(**{"limits.max_concurrent_turns": 16}))
    app = running.app
    grpc_target = target("127.0.0.1", app.grpc_port, tls=False, timeout=15)
    options = FuzzOptions(requests=150, concurrency=4, seed=3, canary_every=0.5, settle_seconds=5)
    result = await run_fuzz(grpc_target, grpc_target.with_port(app.http_port), options)
    report = "\n".join(result.lines())
    assert result.tally.requests >= 150, report
    assert len(result.tally.classes) >= 8, report  # most families ran in 150 requests
    assert result.canaries.served("before") == 3 and result.canaries.served("after") == 3, report
    assert result.deaths == 0, report
    assert not result.failures, report
    assert "127.0.0.2" in result.canary_from, report


async def test_the_canary_keeps_its_slots_while_the_fuzz_fills_its_address(server_factory):
    """The launched matrix's set-up in small: the fuzz's address may fill only half the server."""
    limits = {"limits.max_concurrent_turns": 4, "limits.max_turns_per_address": 2}
    running = await server_factory(make_settings(**limits))
    app = running.app
    grpc_target = target("127.0.0.1", app.grpc_port, tls=False, timeout=15)
    options = FuzzOptions(requests=120, concurrency=8, seed=5, canary_every=0.3, settle_seconds=5)
    result = await run_fuzz(grpc_target, grpc_target.with_port(app.http_port), options)
    report = "\n".join(result.lines())
    assert result.canaries.total("during") >= 1, report
    assert not result.failures, report
    # At most 2 fuzz turns + 1 canary < 4: the canary is never even told "server full".
    assert sum(result.canaries.retries.values()) == 0, report


def test_the_launched_servers_cap_the_fuzzers_address_below_the_global_limit():
    for kind in ("sqlite", "postgres", "embedded-sqlite"):
        env = launch_env(kind, "postgresql+asyncpg://x@127.0.0.1/test", "s")
        assert (
            env["NEXY_LIMITS__MAX_TURNS_PER_ADDRESS"]
            == PER_ADDRESS_ENV["NEXY_LIMITS__MAX_TURNS_PER_ADDRESS"]
        )
    assert int(PER_ADDRESS_ENV["NEXY_LIMITS__MAX_TURNS_PER_ADDRESS"]) == 4
    assert relay_possible("127.0.0.1", "127.0.0.2") and relay_possible("localhost", "127.0.0.2")
    assert not relay_possible("::1", "127.0.0.2")


async def test_the_relay_gives_slow_readers_their_own_source_address():
    peers: list[str] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    relay = SourceRelay(target("127.0.0.1", port, tls=False), "127.0.0.2")
    relay_port = await relay.start()
    _, writer = await asyncio.open_connection("127.0.0.1", relay_port)
    for _ in range(100):
        if peers:
            break
        await asyncio.sleep(0.02)
    writer.close()
    await relay.close()
    listener.close()
    assert peers == ["127.0.0.2"]  # a direct connection to 127.0.0.2 would still say 127.0.0.1


async def test_slow_readers_report_the_good_client_and_the_slow_streams(server_factory):
    running = await server_factory(
        make_settings(**{"llm.scripted.mode": "echo", "llm.scripted.tokens_per_second": 40})
    )
    grpc_target = target("127.0.0.1", running.app.grpc_port, tls=False, timeout=15)
    options = SlowOptions(streams=6, good=5, read_every_s=0.5, open_wait_s=5)
    result = await run_slow_readers(grpc_target, options)
    assert result.good_total == 5
    assert result.good_admitted == 5, result.lines()
    assert sum(result.slow_outcomes.values()) == 6
    assert result.slow_started == 6, result.lines()
