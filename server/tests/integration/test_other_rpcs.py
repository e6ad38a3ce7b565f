"""GenerateWelcomeAudio, ReportUsage, the HTTP surface, gRPC health and reflection."""

from __future__ import annotations

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.version import version_info
from tests.fakes.client import HARDWARE_ID
from tests.fakes.providers import FailingTTS

pytestmark = pytest.mark.asyncio


async def _welcome(stub, **fields) -> list[pb.WelcomeResponse]:
    return [r async for r in stub.GenerateWelcomeAudio(pb.WelcomeRequest(**fields))]


async def test_welcome_metadata_first_with_real_duration(server):
    responses = await _welcome(server.stub, text="Hello and welcome.", session_id="welcome_1700")
    kinds = [r.WhichOneof("content") for r in responses]
    assert kinds[0] == "metadata" and kinds[-1] == "end_message"
    assert set(kinds[1:-1]) == {"audio_chunk"}
    meta = responses[0].metadata
    assert (meta.sample_rate, meta.channels, meta.dtype, meta.method) == (
        48000,
        1,
        "int16",
        "scripted",
    )
    samples = sum(len(r.audio_chunk.audio_data) // 2 for r in responses[1:-1])
    assert meta.duration_sec == pytest.approx(samples / 48000, abs=1e-6)
    assert meta.duration_sec > 0.5


async def test_welcome_default_greeting_is_ready_at_start(server):
    # The default greeting is synthesized during start-up, so even the first request is a hit.
    first = await _welcome(server.stub)
    metrics = server.app.metrics.render().decode()
    assert 'nexy_welcome_requests_total{cache="hit"} 1.0' in metrics
    assert first[0].metadata.duration_sec > 1.0


async def test_welcome_cache_serves_repeats(server):
    first = await _welcome(server.stub, text="A brand new sentence.")
    second = await _welcome(server.stub, text="A brand new sentence.")
    assert [r.SerializeToString() for r in first] == [r.SerializeToString() for r in second]
    metrics = server.app.metrics.render().decode()
    assert 'nexy_welcome_requests_total{cache="miss"} 1.0' in metrics
    assert 'nexy_welcome_requests_total{cache="hit"} 1.0' in metrics


async def test_welcome_engine_failure_is_unavailable(server_factory):
    server = await server_factory(tts=FailingTTS())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _welcome(server.stub, text="hi")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_report_usage_is_stored(server):
    ok = await server.stub.ReportUsage(
        pb.UsageRequest(
            hardware_id=HARDWARE_ID,
            session_id="s",
            source="client",
            input_tokens=12,
            output_tokens=30,
            model="m",
        )
    )
    assert ok.success
    await server.app.settle()
    stored = (await server.app.repository.export_device(HARDWARE_ID))["usage"]
    assert [(u["input_tokens"], u["output_tokens"], u["model"]) for u in stored] == [(12, 30, "m")]
    bad = await server.stub.ReportUsage(pb.UsageRequest(hardware_id=""))
    assert not bad.success and "hardware_id is required" in bad.message
    negative = await server.stub.ReportUsage(pb.UsageRequest(hardware_id="X", input_tokens=-1))
    assert not negative.success


async def test_http_surface(server):
    info = version_info()
    async with aiohttp.ClientSession() as http:
        async with http.get(server.http + "/health") as response:
            health = await response.json()
            assert response.status == 200
        assert health["status"] == "OK"
        # The reference's monitoring compares them: both are the full version string.
        assert health["latest_version"] == health["latest_build"] == info.version
        async with http.get(server.http + "/ready") as response:
            assert response.status == 200
        async with http.get(server.http + "/status") as response:
            status = await response.json()
        assert status["active_turns"] == 0 and status["version"] == info.version
        assert set(status["components"]) == {
            "storage",
            "outbox",
            "memory",
            "llm",
            "tts",
            "journal",
            "updates",
            "coordination",
        }
        async with http.get(server.http + "/metrics") as response:
            text = await response.text()
        assert "nexy_active_turns" in text and "nexy_time_to_first_audio_seconds" in text


async def test_one_version_on_every_surface(server):
    """/health, /status, /updates/health and the package metadata all say what VERSION says."""
    from importlib import metadata
    from pathlib import Path

    declared = (Path(__file__).resolve().parents[3] / "VERSION").read_text().strip()  # noqa: ASYNC240
    async with aiohttp.ClientSession() as http:
        async with http.get(server.http + "/health") as response:
            health = await response.json()
        async with http.get(server.http + "/status") as response:
            status = await response.json()
        async with http.get(server.http + "/updates/health") as response:
            updates = await response.json()
    seen = {
        "package": metadata.version("nexy-server"),
        "/health": health["latest_version"],
        "/status": status["version"],
        "/updates/health": updates["server_version"],
    }
    assert set(seen.values()) == {declared}, seen
    assert health["latest_build"] == status["build"] == updates["server_build"]


async def test_grpc_health_and_reflection(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="streaming.StreamingService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    call = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for response in call:
        names |= {s.name for s in response.list_services_response.service}
    assert "streaming.StreamingService" in names and "grpc.health.v1.Health" in names
