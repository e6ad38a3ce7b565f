"""Per-device limits and the idle timeout, through a real server and real gRPC clients."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import grpc
import pytest

import nexy.app as app_module
from nexy.limits import DeviceLimits
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from nexy.turn.tracker import TurnTracker
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio

OTHER_DEVICE = "0F1E2D3C-4B5A-4697-8877-665544332211"
# About 25 s of speech: far more audio than the idle client's HTTP/2 window holds.
CHATTY = '{"text": "' + "This reply goes on and on, sentence after sentence. " * 8 + '"}'


@pytest.fixture
def protected(server_factory, monkeypatch):
    """A server whose tracker applies the device limits of its settings.

    Builds the tracker the way the application is meant to (app.py is wired separately); once
    it is, this patch only repeats what the application already does.
    """

    async def start(**overrides):
        settings = make_settings(**overrides)
        limits = settings.limits

        def build_tracker(max_concurrent_turns: int, **_: object) -> TurnTracker:
            return TurnTracker(
                max_concurrent_turns,
                max_turns_per_device=limits.max_turns_per_device,
                device_limits=DeviceLimits(limits),
            )

        monkeypatch.setattr(app_module, "TurnTracker", build_tracker)
        return await server_factory(settings)

    return start


async def _status(server) -> dict:
    async with aiohttp.ClientSession() as http, http.get(server.http + "/status") as response:
        return await response.json()


async def test_device_concurrency_limit_leaves_other_devices_served(protected):
    server = await protected(
        **{"limits.max_turns_per_device": 1, "llm.scripted.first_token_ms": 400}
    )
    first = asyncio.create_task(run_turn(server.stub, commit("one")))
    while server.app.tracker.active == 0:
        await asyncio.sleep(0.005)
    refused = await run_turn(server.stub, commit("two"))
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.kinds == ["error_message"]
    assert refused.responses[0].error_message.startswith("DEVICE_TURN_LIMIT_EXCEEDED")
    other = await run_turn(server.stub, commit("hi", hardware_id=OTHER_DEVICE))
    assert other.code == grpc.StatusCode.OK and other.kinds[-1] == "end_message"
    assert (await first).code == grpc.StatusCode.OK


async def test_rate_limit_refuses_with_a_clear_message(protected):
    server = await protected(**{"limits.device_burst": 2, "limits.device_requests_per_minute": 1})
    for _ in range(2):
        assert (await run_turn(server.stub, commit("hi"))).code == grpc.StatusCode.OK
    refused = await run_turn(server.stub, commit("again"))
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    message = refused.responses[0].error_message
    assert message.startswith("RATE_LIMIT_EXCEEDED") and "retry in" in message
    assert refused.details == message
    other = await run_turn(server.stub, commit("hi", hardware_id=OTHER_DEVICE))
    assert other.code == grpc.StatusCode.OK
    sample = server.app.metrics.registry.get_sample_value
    assert sample("nexy_rejections_total", {"reason": "device_rate"}) == 1


async def test_daily_quota_is_permission_denied_with_the_marker(protected):
    server = await protected(**{"limits.daily_turns": 2})
    for _ in range(2):
        assert (await run_turn(server.stub, commit("hi"))).code == grpc.StatusCode.OK
    refused = await run_turn(server.stub, commit("third"))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.kinds == ["error_message"]
    assert "daily limit exceeded" in refused.responses[0].error_message
    assert "daily limit exceeded" in refused.details
    other = await run_turn(server.stub, commit("hi", hardware_id=OTHER_DEVICE))
    assert other.code == grpc.StatusCode.OK


async def test_collect_requests_are_not_rate_limited(protected):
    server = await protected(**{"limits.device_burst": 1, "limits.device_requests_per_minute": 1})
    for seq in range(5):
        request = commit("")
        request.phase = pb.REQUEST_PHASE_COLLECT
        request.chunk_seq = seq
        request.chunk_text = f"part {seq}"
        result = await run_turn(server.stub, request)
        assert result.code == grpc.StatusCode.OK


async def test_idle_client_is_ended_and_its_turn_freed(server_factory):
    settings = make_settings(
        **{
            "limits.idle_timeout_seconds": 0.5,
            "limits.outbound_queue_events": 4,
            "llm.scripted.reply": CHATTY,
        }
    )
    server = await server_factory(settings)
    # No BDP probing and a tiny look-ahead keep the client's receive window small, so the
    # server's writes stop completing soon after this client stops reading.
    options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{server.app.grpc_port}", options=options
    ) as channel:
        call = pb_grpc.StreamingServiceStub(channel).StreamAudio(
            commit("talk", hardware_id=HARDWARE_ID)
        )
        assert (await call.read()).HasField("text_chunk")
        started = time.perf_counter()
        # Another device is served normally while this call sits unread.
        other = await run_turn(server.stub, commit("hi", hardware_id=OTHER_DEVICE))
        assert other.code == grpc.StatusCode.OK and other.kinds[-1] == "end_message"
        while (await _status(server))["active_turns"] and time.perf_counter() - started < 5:
            await asyncio.sleep(0.05)
        assert (await _status(server))["active_turns"] == 0
        assert server.app.tracker.active == 0
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await call.read() is not grpc.aio.EOF:
                pass
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "read nothing" in (ended.value.details() or "")
    sample = server.app.metrics.registry.get_sample_value
    assert sample("nexy_idle_streams_total") == 1
    assert sample("nexy_turns_total", {"outcome": "interrupted"}) == 1
    assert sample("nexy_stream_errors_total", {"status": "DEADLINE_EXCEEDED"}) == 1
