"""The testing-guide toolkit (nexy.toolkit) against real in-process servers.

Each suite must pass against a correct server, and the checks must fail, with the right
reason, against a wrong target (a closed port, a server configured the other way, a server
whose speech engine is down).
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from nexy.toolkit import cli, wire
from nexy.toolkit.actions import run_actions, run_actions_offline
from nexy.toolkit.backpressure import run_backpressure
from nexy.toolkit.calls import (
    TurnResult,
    audio_problems,
    commit,
    order_problems,
    run_turn,
    stub_for,
)
from nexy.toolkit.chaos import run_chaos
from nexy.toolkit.connection import Target, closed_port, connect_check, target
from nexy.toolkit.contract import run_contract
from nexy.toolkit.health import http_precheck, run_health
from nexy.toolkit.interceptors import run_interceptor_errors
from nexy.toolkit.local_server import local_server
from nexy.toolkit.pipeline import run_chain, run_pipeline
from nexy.toolkit.promtext import by_label, total
from nexy.toolkit.results import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Report, failed, passed
from nexy.toolkit.smoke import run_smoke
from nexy.toolkit.welcome import run_welcome
from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.providers import FailingTTS
from tests.fakes.server import make_settings

# Echo replies at 40 chunks of 8 characters a second: a long prompt is a slow turn, so the
# backpressure, session and interrupt probes have something running to collide with.
SLOW_ECHO = {
    "llm.intents.enabled": True,
    "llm.scripted.mode": "echo",
    "llm.scripted.tokens_per_second": 40,
    "llm.scripted.chunk_chars": 8,
}


def _targets(server) -> tuple[Target, Target]:
    app = server.app
    return target("127.0.0.1", app.grpc_port, tls=False, timeout=15), target(
        "127.0.0.1", app.http_port, tls=False, timeout=15
    )


def _assert_ok(report: Report) -> None:
    assert report.ok, "\n".join(check.line() for check in report.failures)


@pytest.fixture
async def slow_server(server_factory):
    return await server_factory(make_settings(**SLOW_ECHO))


async def test_smoke_health_and_welcome_pass(server):
    grpc_target, http = _targets(server)
    assert (await connect_check(grpc_target)).ok
    report = await run_smoke(grpc_target, Report())
    await run_health(http, report, grpc_port=grpc_target.port)
    await run_welcome(grpc_target, report, http)
    _assert_ok(report)
    expected = {"smoke.interrupt", "smoke.stream_audio", "smoke.missing_session"}
    expected |= {"smoke.unknown_hardware", "health.versions_agree", "health.grpc_health"}
    expected |= {"health.build_is_version"}
    assert expected <= {c.name for c in report.checks}
    assert "cache=hit" in report.get("welcome.cache").detail  # proven by /metrics, not timing


async def test_pipeline_chain_and_actions_pass(slow_server):
    grpc_target, _ = _targets(slow_server)
    report = await run_pipeline(grpc_target, Report())
    await run_chain(grpc_target, report)
    await run_actions(grpc_target, report, expect_no_actions=False)
    _assert_ok(report)
    # The session probe really collided with a running turn (not skipped as "too fast").
    assert not report.get("chain.duplicate_session").skipped
    assert "48000" in report.get("pipeline.audio_format").detail


async def test_actions_flag_off_mode(server_factory):
    settings = make_settings(**{"llm.intents.enabled": True, "actions.forward": False})
    grpc_target, _ = _targets(await server_factory(settings))
    _assert_ok(await run_actions(grpc_target, Report(), expect_no_actions=True))
    # The default mode must notice that no action arrives.
    report = await run_actions(grpc_target, Report(), expect_no_actions=False)
    assert not report.get("mcp.grpc.open_app").ok


async def test_actions_mode_fails_against_a_forwarding_server(slow_server):
    grpc_target, _ = _targets(slow_server)
    report = await run_actions(grpc_target, Report(), expect_no_actions=True)
    assert not report.get("mcp.grpc.open_app").ok and not report.get("mcp.grpc.close_app").ok
    assert report.get("mcp.grpc.no_command").ok


def test_actions_offline_checks_pass():
    report = run_actions_offline(Report())
    _assert_ok(report)
    assert {"mcp.normalise", "mcp.allow_list", "mcp.feature_flags", "mcp.payload"} <= {
        c.name for c in report.checks
    }


async def test_contract_passes(server):
    grpc_target, _ = _targets(server)
    report = await run_contract(grpc_target, Report())
    _assert_ok(report)
    assert report.get("contract.server_schema").ok and report.get("contract.stubs").ok


BACKPRESSURE_LIMITS = {
    "limits.max_concurrent_turns": 4,
    "limits.max_turns_per_device": 2,
    "limits.device_burst": 3,
    "limits.device_requests_per_minute": 30,
    "limits.idle_timeout_seconds": 1,
}


async def _interceptor_report(server) -> Report:
    grpc_target, http = _targets(server)
    return await run_interceptor_errors(grpc_target, http, Report())


async def test_interceptor_error_statuses_and_error_metrics(slow_server):
    report = await _interceptor_report(slow_server)
    for name in ("deadline", "unavailable", "cancel", "status", "metric_errors"):
        assert report.get(f"interceptor.{name}").ok, report.get(f"interceptor.{name}").detail
    assert report.get("interceptor.logs").skipped  # no --server-log for an in-process server


async def test_interceptor_request_metrics(slow_server):
    _assert_ok(await _interceptor_report(slow_server))


async def _backpressure_report(server_factory) -> Report:
    server = await server_factory(make_settings(**SLOW_ECHO, **BACKPRESSURE_LIMITS))
    grpc_target, http = _targets(server)
    return await run_backpressure(grpc_target, http, Report())


async def test_backpressure_global_limit_idle_timeout_and_recovery(server_factory):
    report = await _backpressure_report(server_factory)
    for name in ("limits", "global_streams", "idle", "recovery"):
        check = report.get(f"backpressure.{name}")
        assert check.ok and not check.skipped, check.detail
    assert "STREAM_LIMIT_EXCEEDED" in report.get("backpressure.global_streams").detail


async def test_backpressure_device_and_rate_limits(server_factory):
    report = await _backpressure_report(server_factory)
    _assert_ok(report)
    assert not report.get("backpressure.device_streams").skipped
    assert not report.get("backpressure.rate").skipped


async def test_chaos_passes_and_degrades_gracefully_without_speech(server_factory):
    settings = make_settings(**SLOW_ECHO, **{"limits.max_concurrent_turns": 6})
    for server in (
        await server_factory(settings),
        await server_factory(settings, tts=FailingTTS()),
    ):
        grpc_target, http = _targets(server)
        _assert_ok(await run_chaos(grpc_target, http, Report()))


async def test_pipeline_fails_when_speech_is_down(server_factory):
    grpc_target, _ = _targets(await server_factory(tts=FailingTTS()))
    report = await run_pipeline(grpc_target, Report())
    assert not report.get("pipeline.audio_format").ok
    assert not report.get("pipeline.timing").ok
    assert report.get("pipeline.turn").ok  # the turn itself still ends with end_message


async def test_checks_fail_against_a_closed_port():
    port = closed_port("127.0.0.1")
    grpc_target = target("127.0.0.1", port, tls=False, timeout=3)
    connect = await connect_check(grpc_target)
    assert not connect.ok and "Connect" in connect.detail
    report = await run_smoke(grpc_target, Report())
    assert not report.ok
    assert "UNAVAILABLE" in report.get("smoke.interrupt").detail
    assert not (await http_precheck(None, grpc_target)).ok
    health = await run_health(grpc_target, Report(), grpc_port=port)
    assert not health.ok and not health.get("health.ports").ok


def test_cli_exit_codes():
    async def suite_ok(args, where, report):
        report.add(passed("x", "fine"))

    async def suite_bad(args, where, report):
        report.add(failed("x", "broken"))

    assert cli.run_script("t", suite_ok, argv=[], precheck=None) == EXIT_OK
    assert cli.run_script("t", suite_bad, argv=["h", "1"], precheck=None) == EXIT_FAILED
    closed = str(closed_port("127.0.0.1"))
    assert cli.run_script("t", suite_ok, argv=["127.0.0.1", closed]) == EXIT_USAGE
    for bad in (["h", "0"], ["h", "1", "--port", "2"], ["--timeout", "0"]):
        with pytest.raises(SystemExit) as caught:
            cli.run_script("t", suite_ok, argv=bad, precheck=None)
        assert caught.value.code == EXIT_USAGE


def test_target_rules():
    assert target("example.com", 443).tls and not target("localhost", 50051).tls
    assert target("localhost", 50051, tls=True).tls
    assert target("example.com", 443).url("/health") == "https://example.com/health"
    assert target("localhost", 8080).url("/status") == "http://localhost:8080/status"


def test_local_server_runs_the_smoke_suite():
    with local_server() as server:
        grpc_target = target("127.0.0.1", server.grpc_port, tls=False, timeout=15)
        report = asyncio.run(run_smoke(grpc_target, Report()))
        assert server.process.poll() is None
    _assert_ok(report)
    assert server.process.poll() is not None  # stopped on exit


# --- the pure helpers the checks rely on ---------------------------------------------------


def _chunk(pcm: bytes, **fields) -> pb.AudioChunk:
    base = {"dtype": "int16", "shape": [len(pcm) // 2], "sample_rate": 48000, "channels": 1}
    return pb.AudioChunk(audio_data=pcm, **{**base, **fields})


def test_audio_rules(monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")  # the problems are worded in the reader's language
    assert audio_problems(_chunk(b"\x01\x00" * 10)) == []
    assert audio_problems(_chunk(b"\x00\x00" * 10)) == ["silence (all zeros)"]
    monkeypatch.setenv("LC_ALL", "ru_RU.UTF-8")
    assert audio_problems(_chunk(b"\x00\x00" * 10)) == ["тишина (все нули)"]
    assert len(audio_problems(_chunk(b"\x01\x00\x01", shape=[1]))) == 1  # odd length
    assert "sample_rate=24000" in audio_problems(_chunk(b"\x01\x00", sample_rate=24000))[0]


def test_order_rules():
    def turn(*kinds: str) -> TurnResult:
        values = {
            "text_chunk": {"text_chunk": "Hi."},
            "audio_chunk": {"audio_chunk": _chunk(b"\x01\x00")},
            "action_message": {"action_message": pb.ActionMessage(action_json="{}")},
            "end_message": {"end_message": "done"},
            "error_message": {"error_message": "boom"},
        }
        return TurnResult([pb.StreamResponse(**values[k]) for k in kinds])

    assert order_problems(turn("text_chunk", "audio_chunk", "action_message", "end_message")) == []
    assert order_problems(turn("audio_chunk", "text_chunk", "end_message"))
    assert order_problems(turn("text_chunk", "end_message", "end_message"))
    assert order_problems(turn("text_chunk", "action_message", "audio_chunk", "end_message"))
    assert order_problems(turn("end_message"))


def test_wire_reader_sees_what_the_parser_hides():
    good = pb.StreamResponse(text_chunk="hi").SerializeToString()
    assert wire.wire_problems(good, pb.StreamResponse.DESCRIPTOR) == []
    both = good + pb.StreamResponse(end_message="done").SerializeToString()
    assert pb.StreamResponse.FromString(both).WhichOneof("content") == "end_message"  # hidden
    assert "text_chunk, end_message" in wire.wire_problems(both, pb.StreamResponse.DESCRIPTOR)[0]
    unknown = good + bytes([0x78, 0x01])  # field 15, varint
    assert "#15" in wire.wire_problems(unknown, pb.StreamResponse.DESCRIPTOR)[0]
    wrong_type = bytes([0x08, 0x01])  # field 1 (a string) as a varint
    assert "wire type" in wire.wire_problems(wrong_type, pb.StreamResponse.DESCRIPTOR)[0]
    audio = pb.StreamResponse(audio_chunk=_chunk(b"\x01\x00")).SerializeToString()
    assert wire.wire_problems(audio, pb.StreamResponse.DESCRIPTOR) == []
    assert wire.wire_problems(b"\x0a\x05ab", pb.StreamResponse.DESCRIPTOR)  # truncated


def test_prometheus_text_totals():
    text = (
        "# TYPE nexy_grpc_requests_total counter\n"
        'nexy_grpc_requests_total{method="/streaming.StreamingService/StreamAudio",code="OK"} 3.0\n'
        'nexy_grpc_requests_total{method="/streaming.StreamingService/StreamAudio",'
        'code="INVALID_ARGUMENT"} 2.0\n'
        'nexy_grpc_requests_total{method="/grpc.health.v1.Health/Check",code="OK"} 5.0\n'
    )
    assert total(text, "nexy_grpc_requests_total") == 10
    assert total(text, "nexy_grpc_requests_total", {"method": "StreamAudio"}) == 5
    assert total(text, "nexy_missing_total") is None
    assert by_label(text, "nexy_grpc_requests_total", "code", {"method": "StreamAudio"}) == {
        "OK": 3.0,
        "INVALID_ARGUMENT": 2.0,
    }


async def test_run_turn_records_status_and_timings(server):
    grpc_target, _ = _targets(server)
    channel = grpc_target.channel()
    try:
        stub = stub_for(channel)
        good = await run_turn(stub, commit("Tell me something."))
        bad = await run_turn(stub, commit("hi", session_id=""))
    finally:
        await channel.close()
    assert good.ended and good.first_text_s is not None and good.first_audio_s is not None
    assert good.first_text_s <= good.first_audio_s <= good.total_s
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and "session_id" in bad.error_message
