"""Two real server processes sharing the machine's Redis and PostgreSQL, as replicas do.

Both run ``nexy-server serve`` (scripted providers, paced so a turn lasts ~2 s) with the same
PostgreSQL schema and the same coordination key prefix, both unique to this run. Proven across
them: an interrupt sent to one replica stops the device's turn on the other within 200 ms and
names it; a duplicate session is refused while the first turn completes; the per-device limit
of concurrent turns counts the device's turns on both. Skipped only when nothing listens on the
PostgreSQL or the Redis port. Last, a replica whose Redis is unreachable still serves turns.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
import pytest_asyncio
from scripts.benchlib import ServerProcess, running_server_process

from nexy.app import NexyApp
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from tests.fakes.client import TurnResult, commit, run_turn
from tests.fakes.server import make_settings, with_private_storage
from tests.storage.conftest import POSTGRES_URL, RUN_TAG, _postgres, require_postgres
from tests.storage.test_coordination import (
    REDIS_URL,
    closed_port,
    delete_keys,
    require_redis,
    unique_prefix,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPLY = "This answer is spoken slowly so that the other replica has time to act on it. " * 2
INTERRUPT_BUDGET_S = 0.2


@dataclass
class Replica:
    process: ServerProcess
    channel: grpc.aio.Channel

    @property
    def stub(self) -> pb_grpc.StreamingServiceStub:
        return pb_grpc.StreamingServiceStub(self.channel)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replicas() -> AsyncIterator[tuple[Replica, Replica]]:
    require_postgres()
    require_redis()
    schema, prefix = f"{RUN_TAG}_replicas", unique_prefix()
    env = {
        "NEXY_LLM__PROVIDER": "scripted",
        "NEXY_LLM__INTENTS__ENABLED": "false",
        "NEXY_LLM__SCRIPTED__REPLY": json.dumps({"text": REPLY}),
        "NEXY_LLM__SCRIPTED__FIRST_TOKEN_MS": "100",
        "NEXY_LLM__SCRIPTED__TOKENS_PER_SECOND": "12",
        "NEXY_LLM__SCRIPTED__CHUNK_CHARS": "8",
        "NEXY_TTS__PROVIDER": "scripted",
        "NEXY_LIMITS__MAX_TURNS_PER_DEVICE": "1",
        "NEXY_SERVER__SHUTDOWN_GRACE_SECONDS": "2",
        "NEXY_STORAGE__URL": POSTGRES_URL,
        "NEXY_STORAGE__SCHEMA_NAME": schema,
        "NEXY_COORDINATION__REDIS_URL": REDIS_URL,
        "NEXY_COORDINATION__KEY_PREFIX": prefix,
    }
    try:
        async with AsyncExitStack() as stack:
            processes = await asyncio.gather(
                *(stack.enter_async_context(running_server_process(env)) for _ in range(2))
            )
            pair = []
            for process in processes:
                channel = grpc.aio.insecure_channel(f"127.0.0.1:{process.grpc_port}")
                stack.push_async_callback(channel.close)
                pair.append(Replica(process, channel))
            yield pair[0], pair[1]
    finally:
        await _postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await delete_keys(prefix)


def device() -> str:
    """A device of its own per test, so limits used by one test never reach another."""
    return f"REPLICA-TEST-{uuid.uuid4()}"


async def start_turn(replica: Replica, request: pb.StreamRequest) -> grpc.aio.UnaryStreamCall:
    """Open a COMMIT and wait for its first response: the turn is admitted and running."""
    call = replica.stub.StreamAudio(request, timeout=30)
    first = await call.read()
    assert first.HasField("text_chunk"), first
    return call


async def finish(call: grpc.aio.UnaryStreamCall) -> tuple[TurnResult, float]:
    """Read a started call to its end; the result and the monotonic time it ended."""
    result = TurnResult()
    try:
        while (response := await call.read()) is not grpc.aio.EOF:
            result.responses.append(response)
    except grpc.aio.AioRpcError as exc:
        result.code, result.details = exc.code(), exc.details() or ""
    else:
        result.code = await call.code()
    return result, time.perf_counter()


async def test_both_replicas_report_coordination_ready(replicas: tuple[Replica, Replica]) -> None:
    async with aiohttp.ClientSession() as http:
        for replica in replicas:
            url = f"http://127.0.0.1:{replica.process.http_port}/status"
            async with http.get(url) as response:
                status = await response.json()
            assert status["components"]["coordination"] == {"state": "ready", "reason": ""}


async def test_interrupt_on_b_stops_the_turn_running_on_a(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    hardware_id, session = device(), str(uuid.uuid4())
    call = await start_turn(a, commit("tell me", session_id=session, hardware_id=hardware_id))
    ending = asyncio.create_task(finish(call))
    sent = time.perf_counter()
    reply = await b.stub.InterruptSession(pb.InterruptRequest(hardware_id=hardware_id))
    answered = time.perf_counter()
    result, ended = await asyncio.wait_for(ending, 5)
    latency = ended - sent
    assert reply.success and list(reply.interrupted_sessions) == [session]
    assert result.code == grpc.StatusCode.CANCELLED, result.code
    assert result.responses[-1].error_message == "interrupted"
    assert latency < INTERRUPT_BUDGET_S, f"A's stream ended {latency * 1000:.0f} ms after the call"
    print(
        f"\ncross-replica interrupt: B answered in {(answered - sent) * 1000:.1f} ms, "
        f"A's stream ended {latency * 1000:.1f} ms after the call"
    )
    # The interrupt does not block the device's next turn, on either replica.
    follow_up = await _turn_soon(b, commit("again", hardware_id=hardware_id))
    assert follow_up.code == grpc.StatusCode.OK and follow_up.kinds[-1] == "end_message"


async def test_duplicate_session_on_the_other_replica_is_refused_and_the_first_completes(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    hardware_id, session = device(), str(uuid.uuid4())
    call = await start_turn(a, commit("one", session_id=session, hardware_id=hardware_id))
    duplicate = await run_turn(b.stub, commit("two", session_id=session, hardware_id=hardware_id))
    assert duplicate.code == grpc.StatusCode.ALREADY_EXISTS, duplicate.details
    assert duplicate.kinds == ["error_message"]
    first, _ = await finish(call)
    assert first.code == grpc.StatusCode.OK and first.kinds[-1] == "end_message"


async def test_device_turn_limit_holds_across_replicas(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    hardware_id = device()
    call = await start_turn(a, commit("one", hardware_id=hardware_id))
    refused = await run_turn(b.stub, commit("two", hardware_id=hardware_id))
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details
    assert refused.responses[0].error_message.startswith("DEVICE_TURN_LIMIT_EXCEEDED")
    other = await run_turn(b.stub, commit("hi", hardware_id=device()))
    assert other.code == grpc.StatusCode.OK
    first, _ = await finish(call)
    assert first.code == grpc.StatusCode.OK
    # Once A's turn has ended (its release reaches Redis right after), B takes the device's turn.
    assert (
        await _turn_soon(b, commit("three", hardware_id=hardware_id))
    ).code == grpc.StatusCode.OK


async def _turn_soon(replica: Replica, request: pb.StreamRequest) -> TurnResult:
    """Run a turn, retrying briefly while the device's previous turn is still being released."""
    async with asyncio.timeout(5):
        while True:
            result = await run_turn(replica.stub, request)
            if result.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                return result
            await asyncio.sleep(0.02)


async def test_a_replica_whose_redis_is_unreachable_serves_turns_degraded(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Needs no Redis: the configured one is a closed port. Turns go on; /status says why."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings = make_settings(**{"coordination.redis_url": url, "limits.max_turns_per_device": 1})
    app = NexyApp(with_private_storage(settings, tmp_path_factory))
    await app.start(grpc_port=0, http_port=0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
    try:
        stub = pb_grpc.StreamingServiceStub(channel)
        hardware_id = device()
        assert (
            await run_turn(stub, commit("hi", hardware_id=hardware_id))
        ).code == grpc.StatusCode.OK
        reply = await stub.InterruptSession(pb.InterruptRequest(hardware_id=hardware_id))
        assert reply.success and list(reply.interrupted_sessions) == []
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{app.http_port}"
            async with http.get(base + "/ready") as response:
                assert response.status == 200  # optional: degraded, not down
            async with http.get(base + "/status") as response:
                status = await response.json()
        coordination = status["components"]["coordination"]
        assert coordination["state"] == "degraded" and "redis unreachable" in coordination["reason"]
    finally:
        await channel.close()
        await app.stop()
