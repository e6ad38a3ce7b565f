"""The playground's WebSocket turns: the gRPC pipeline, its validation, limits and terminals."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.fakes.client import HARDWARE_ID
from tests.fakes.playground import request, socket_turn
from tests.fakes.server import make_settings
from tests.waiting import eventually

pytestmark = pytest.mark.asyncio

ACTION_REPLY = '{"text": "Opening Safari.", "command": "Open-App", "args": {"app_name": "Safari"}}'
SESSION = "0d6f3f4e-2a8b-4c1d-9e7f-1a2b3c4d5e6f"


async def test_a_turn_streams_text_audio_action_then_end(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.reply": ACTION_REPLY}))
    turn = await socket_turn(server.http, request("open safari", session_id=SESSION))
    assert turn.text == "Opening Safari."
    assert turn.kinds[0] == "text_chunk"
    audio_format = turn.messages[turn.kinds.index("audio_format")]
    assert audio_format == {
        "type": "audio_format",
        "sample_rate": 48000,
        "channels": 1,
        "dtype": "int16",
    }
    assert turn.kinds.index("audio_format") < turn.kinds.index("<audio>")
    assert len(turn.audio) > 48000 * 2 * 0.5 and len(turn.audio) % 2 == 0 and any(turn.audio)
    assert turn.kinds[-2:] == ["action_message", "end_message"]
    assert turn.messages[-2] == {
        "type": "action_message",
        "action": {"session_id": SESSION, "command": "open_app", "args": {"app_name": "Safari"}},
        "session_id": SESSION,
    }
    assert turn.terminal == {"type": "end_message", "message": "completed"}
    assert turn.close_code == 1000
    # The same journal as gRPC: the turn is recorded with what was spoken.
    await server.app.settle()
    stored = (await server.app.repository.export_device(HARDWARE_ID))["turns"]
    assert [(t["session_id"], t["outcome"]) for t in stored] == [(SESSION, "completed")]


async def test_session_id_may_be_omitted(server):
    turn = await socket_turn(server.http, request())
    assert turn.terminal["type"] == "end_message"
    assert turn.text == "Hello! This is the scripted test reply."


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (request(hardware_id=""), "hardware_id is required (a non-empty device identifier)"),
        (request(session_id="not-a-uuid"), "session_id is required (a UUID)"),
        (request("x" * 8001), "prompt is too long (at most 8000 characters)"),
        (request(""), "prompt is empty: nothing to answer"),
        (request(screenshot="bm90IGFuIGltYWdl"), "screenshot is not a PNG, JPEG or WebP image"),
        ("{not json", "the request is not valid JSON"),
        ("[1, 2]", "the request must be a JSON object"),
        ("[" * 100_000, "the request is not valid JSON"),
        (b"\x00\x01", "send the request as one JSON text message"),
    ],
)
async def test_invalid_requests_get_one_invalid_argument(server, message, expected):
    turn = await socket_turn(server.http, message)
    assert turn.messages == [
        {"type": "error_message", "code": "INVALID_ARGUMENT", "message": expected}
    ]


async def test_wrongly_typed_fields_are_refused_by_the_proto_schema(server):
    turn = await socket_turn(server.http, request(prompt=["a list"]))
    error = turn.terminal
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("the request is not a StreamRequest")
    assert server.app.tracker.active == 0


async def test_the_per_device_limit_is_the_grpc_one(server_factory):
    settings = make_settings(
        **{"limits.max_turns_per_device": 1, "llm.scripted.first_token_ms": 600}
    )
    server = await server_factory(settings)
    first = asyncio.create_task(socket_turn(server.http, request("one")))
    await eventually(lambda: server.app.tracker.active > 0)
    refused = await socket_turn(server.http, request("two"))
    assert refused.terminal["code"] == "RESOURCE_EXHAUSTED"
    assert refused.terminal["message"].startswith("DEVICE_TURN_LIMIT_EXCEEDED")
    assert (await first).terminal["type"] == "end_message"


async def test_an_interrupt_message_ends_the_turn_cancelled(server_factory):
    settings = make_settings(
        **{"llm.scripted.tokens_per_second": 20, "llm.scripted.chunk_chars": 2}
    )
    server = await server_factory(settings)
    turn = await socket_turn(server.http, request(), then={"type": "interrupt"})
    assert turn.terminal == {"type": "error_message", "code": "CANCELLED", "message": "interrupted"}
    assert server.app.tracker.active == 0


async def test_closing_the_socket_cancels_the_turn(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.first_token_ms": 5000}))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.http}/playground/ws") as ws,
    ):
        await ws.send_str(json.dumps(request()))
        while server.app.tracker.active == 0:
            await asyncio.sleep(0.005)
    for _ in range(200):
        if server.app.tracker.active == 0:
            break
        await asyncio.sleep(0.01)
    assert server.app.tracker.active == 0  # the admission slot is given back at once
    await server.app.settle()
    stored = (await server.app.repository.export_device(HARDWARE_ID))["turns"]
    assert [t["outcome"] for t in stored] == ["interrupted"]


async def test_a_turn_outlives_the_http_header_deadline(server_factory):
    # The header deadline guards requests; a socket's frames after the upgrade are not one.
    settings = make_settings(
        **{"server.http_request_timeout_seconds": 0.3, "llm.scripted.first_token_ms": 900}
    )
    server = await server_factory(settings)
    turn = await socket_turn(server.http, request())
    assert turn.terminal["type"] == "end_message"


async def test_a_silent_client_is_told_and_closed(server_factory):
    server = await server_factory(make_settings(**{"limits.idle_timeout_seconds": 0.3}))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.http}/playground/ws") as ws,
    ):
        message = await ws.receive_json(timeout=5)
    assert message == {
        "type": "error_message",
        "code": "DEADLINE_EXCEEDED",
        "message": "no request arrived within 0.3 s",
    }
