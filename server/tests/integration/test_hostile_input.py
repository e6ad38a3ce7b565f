"""Hostile client input through the real server: refused at the edge, plainly, nothing stored."""

from __future__ import annotations

import logging
import uuid

import grpc
import pytest

from nexy.ids import canonical_device_id
from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.providers import HangingLLM
from tests.fakes.server import make_settings
from tests.storage import conftest as storage_fixtures
from tests.waiting import eventually

pytestmark = pytest.mark.asyncio

backend = storage_fixtures.backend  # every test taking ``backend`` runs on SQLite and PostgreSQL
METHOD = "/streaming.StreamingService/"
UNDECODABLE = "the request could not be decoded"
# A string field (hardware_id, field 1) whose bytes are not UTF-8.
BAD_UTF8 = b"\x0a\x03\xff\xfe\xfd"


def _usage(**fields: object) -> pb.UsageRequest:
    base: dict[str, object] = {
        "hardware_id": HARDWARE_ID,
        "session_id": str(uuid.uuid4()),
        "source": "client",
        "model": "gpt-x",
        "input_tokens": 3,
        "output_tokens": 4,
    }
    return pb.UsageRequest(**{**base, **fields})


async def _stored(server, hardware_id: str = HARDWARE_ID) -> dict:
    await server.app.settle()
    return await server.app.repository.export_device(canonical_device_id(hardware_id))  # type: ignore[no-any-return]


async def _start_on(server_factory, backend, tmp_path, **overrides):
    return await server_factory(
        make_settings(
            **{
                "storage.url": backend.url,
                "storage.schema_name": backend.schema,
                "storage.outbox_path": str(tmp_path / "outbox.db"),
                **overrides,
            }
        )
    )


@pytest.mark.parametrize(
    ("prompt", "hardware_id", "error"),
    [
        ("hi\x00there", HARDWARE_ID, "prompt contains a control character"),
        ("hello", HARDWARE_ID + "\x00", "hardware_id contains a control character"),
        ("colour \x1b[31m red", HARDWARE_ID, "prompt contains a control character"),
    ],
)
async def test_hostile_commit_is_refused_and_nothing_stored(
    server_factory, backend, tmp_path, prompt, hardware_id, error
):
    server = await _start_on(server_factory, backend, tmp_path)
    result = await run_turn(server.stub, commit(prompt, hardware_id=hardware_id))
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert result.kinds == ["error_message"] and error in result.error_message
    assert result.details == result.error_message
    # The database still takes writes: a poisoned row would have blocked the outbox.
    assert (await server.stub.ReportUsage(_usage())).success
    stored = await _stored(server)
    assert stored["turns"] == [] and len(stored["usage"]) == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"model": "m" * (15 * 1024 * 1024)}, "model is too long (at most 128 characters)"),
        ({"model": "gpt\x00"}, "model contains a control character"),
        ({"source": "s" * 300}, "source is too long"),
        ({"session_id": "x" * 300}, "session_id is too long"),
        ({"hardware_id": HARDWARE_ID + "\x00"}, "hardware_id contains a control character"),
        ({"input_tokens": -1}, "input_tokens must be between 0 and 2147483647"),
    ],
)
async def test_hostile_usage_report_is_refused_and_not_stored(
    server_factory, backend, tmp_path, fields, error
):
    server = await _start_on(server_factory, backend, tmp_path)
    reply = await server.stub.ReportUsage(_usage(**fields))
    assert not reply.success and error in reply.message
    assert (await server.stub.ReportUsage(_usage(model="after"))).success
    stored = await _stored(server)
    assert [u["model"] for u in stored["usage"]] == ["after"]


async def test_usage_session_alias_is_stored_canonical(server):
    session = str(uuid.uuid4())
    reply = await server.stub.ReportUsage(_usage(session_id="{" + session.upper() + "}"))
    assert reply.success
    assert [u["session_id"] for u in (await _stored(server))["usage"]] == [session]


async def test_usage_reports_are_rate_limited_per_device(server_factory):
    server = await server_factory(
        make_settings(**{"limits.usage_burst": 3, "limits.usage_reports_per_minute": 0.01})
    )
    for _ in range(3):
        assert (await server.stub.ReportUsage(_usage())).success
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # Another spelling of the same device shares its bucket.
        await server.stub.ReportUsage(_usage(hardware_id=HARDWARE_ID.lower()))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too many requests from this device" in caught.value.details()
    other = "0F1E2D3C-4B5A-4697-8877-665544332211"
    assert (await server.stub.ReportUsage(_usage(hardware_id=other))).success
    assert len((await _stored(server))["usage"]) == 3
    metrics = server.app.metrics.render().decode()
    assert 'nexy_usage_reports_total{result="rate_limited"} 1.0' in metrics


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "w" * 1001}, "text is too long (at most 1000 characters)"),
        ({"text": "hello\x00"}, "text contains a control character"),
        ({"voice": "../../etc/passwd"}, "voice must be at most 64"),
        ({"language": "x" * 65}, "language must be at most 64"),
    ],
)
async def test_hostile_welcome_is_refused(server, fields, error):
    call = server.stub.GenerateWelcomeAudio(pb.WelcomeRequest(session_id="welcome_1", **fields))
    responses: list[pb.WelcomeResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for response in call:
            responses.append(response)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [r.error_message for r in responses] == [caught.value.details()]
    assert error in caught.value.details()


async def test_welcome_text_limit_is_configurable(server_factory):
    server = await server_factory(make_settings(**{"limits.max_welcome_chars": 5}))
    call = server.stub.GenerateWelcomeAudio(pb.WelcomeRequest(text="Hello there"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert "at most 5 characters" in caught.value.details()


async def test_interrupt_refuses_control_characters(server):
    reply = await server.stub.InterruptSession(pb.InterruptRequest(hardware_id="dev\x00ice"))
    assert not reply.success and reply.message == "hardware_id contains a control character"


async def test_session_aliases_are_one_session(server_factory):
    server = await server_factory(llm=HangingLLM())
    session = str(uuid.uuid4())
    first = server.stub.StreamAudio(commit("one", session_id="{" + session.upper() + "}"))
    await first.read()
    second = await run_turn(server.stub, commit("two", session_id=session.replace("-", "")))
    assert second.code == grpc.StatusCode.ALREADY_EXISTS
    # An alias of the device interrupts the turn, which is named by its canonical session id.
    alias = "urn:uuid:" + HARDWARE_ID.lower()
    reply = await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=alias))
    assert reply.success and list(reply.interrupted_sessions) == [session]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while await first.read() is not grpc.aio.EOF:
            pass
    assert caught.value.code() == grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", BAD_UTF8])
@pytest.mark.parametrize("method", ["ReportUsage", "InterruptSession"])
async def test_undecodable_unary_request(server, caplog, method, payload):
    call = server.channel.unary_unary(
        METHOD + method, request_serializer=None, response_deserializer=None
    )
    with (
        caplog.at_level(logging.INFO, logger="nexy"),
        pytest.raises(grpc.aio.AioRpcError) as caught,
    ):
        await call(payload)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == UNDECODABLE
    expected = f"{method} code=INVALID_ARGUMENT"
    await eventually(lambda: any(expected in r.getMessage() for r in caplog.records))


@pytest.mark.parametrize("method", ["StreamAudio", "GenerateWelcomeAudio"])
async def test_undecodable_streaming_request(server, method):
    call = server.channel.unary_stream(
        METHOD + method, request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call(BAD_UTF8):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == UNDECODABLE
