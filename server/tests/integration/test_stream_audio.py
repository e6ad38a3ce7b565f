"""StreamAudio end to end through a real in-process server with scripted providers."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio

ACTION_REPLY = '{"text": "Opening Safari.", "command": "Open-App", "args": {"app_name": "Safari"}}'


async def test_commit_streams_text_audio_then_end(server):
    result = await run_turn(server.stub, commit("Hello there"))
    assert result.code == grpc.StatusCode.OK
    assert result.is_spoken_turn()
    assert result.text == "Hello! This is the scripted test reply."
    # The first segment is the first sentence alone, spoken before the character after it
    # arrives: short, for a fast first audio byte (the space goes with the next segment).
    assert result.responses[0].text_chunk == "Hello!"
    # The turn's first chunk is at most 100 ms; audio already waiting later joins up to 500 ms.
    assert 0 < len(result.audio[0].audio_data) <= 9600
    for chunk in result.audio:
        assert chunk.sample_rate == 48000 and chunk.channels == 1 and chunk.dtype == "int16"
        assert len(chunk.audio_data) % 2 == 0 and 0 < len(chunk.audio_data) <= 48000
        assert list(chunk.shape) == [len(chunk.audio_data) // 2]
        assert any(chunk.audio_data)  # never an all-silent chunk


async def test_action_reply_sends_one_action_right_before_end(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.reply": ACTION_REPLY}))
    session = str(uuid.uuid4())
    result = await run_turn(server.stub, commit("open safari", session_id=session))
    assert result.kinds[-2:] == ["action_message", "end_message"]
    assert result.kinds.count("action_message") == 1
    action = result.responses[-2].action_message
    assert action.session_id == session
    assert json.loads(action.action_json) == {
        "session_id": session,
        "command": "open_app",
        "args": {"app_name": "Safari"},
    }
    assert result.text == "Opening Safari."


async def test_action_dropped_when_group_disabled(server_factory):
    settings = make_settings(**{"llm.scripted.reply": ACTION_REPLY, "actions.groups.apps": False})
    server = await server_factory(settings)
    result = await run_turn(server.stub, commit("open safari"))
    assert "action_message" not in result.kinds
    assert result.text == "Opening Safari." and result.kinds[-1] == "end_message"


async def test_one_word_reply_without_punctuation_is_spoken(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.reply": "Hi"}))
    result = await run_turn(server.stub, commit("hello"))
    assert result.text == "Hi"
    assert result.collapsed() == ["text_chunk", "audio_chunk", "end_message"]


async def test_word_split_across_chunks_arrives_whole(server_factory):
    reply = '{"text": "Incomprehensibilities abound. Extraordinarily so!"}'
    settings = make_settings(**{"llm.scripted.reply": reply, "llm.scripted.chunk_chars": 3})
    server = await server_factory(settings)
    result = await run_turn(server.stub, commit("words"))
    assert result.text == "Incomprehensibilities abound. Extraordinarily so!"
    texts = [r.text_chunk for r in result.responses if r.HasField("text_chunk")]
    # Every chunk boundary falls between words, never inside one.
    assert all(a[-1].isspace() or b[0].isspace() for a, b in zip(texts, texts[1:], strict=False))
    words = {"Incomprehensibilities", "abound.", "Extraordinarily", "so!"}
    assert all(set(text.split()) <= words for text in texts)


async def test_each_sentence_text_precedes_its_audio(server_factory):
    reply = '{"text": "First one here. Second one there. Third and last."}'
    server = await server_factory(make_settings(**{"llm.scripted.reply": reply}))
    result = await run_turn(server.stub, commit("three"))
    shape = result.collapsed()
    assert shape[0] == "text_chunk" and shape[-1] == "end_message"
    assert shape.count("text_chunk") == shape.count("audio_chunk") >= 1
    assert result.text == "First one here. Second one there. Third and last."


async def test_fenced_json_reply_never_speaks_json(server_factory):
    reply = '```json\n{"text": "Fenced answer."}\n```'
    server = await server_factory(make_settings(**{"llm.scripted.reply": reply}))
    result = await run_turn(server.stub, commit("q"))
    assert result.text == "Fenced answer."


@pytest.mark.parametrize(
    ("hardware_id", "session_id", "expected"),
    [
        ("", str(uuid.uuid4()), "hardware_id is required"),
        ("   ", str(uuid.uuid4()), "hardware_id is required"),
        ("UNKNOWN", str(uuid.uuid4()), "hardware_id is required"),
        ("unknown", "", "hardware_id is required"),
        (HARDWARE_ID, "", "session_id is required"),
        (HARDWARE_ID, "not-a-uuid", "session_id is required"),
    ],
)
async def test_identifier_errors(server, hardware_id, session_id, expected):
    request = commit("hi", hardware_id=hardware_id)
    request.session_id = session_id
    result = await run_turn(server.stub, request)
    assert result.kinds == ["error_message"]
    assert expected in result.responses[0].error_message
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in result.details


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: setattr(r, "phase", 7), "unknown phase"),
        (lambda r: setattr(r, "screenshot", "%%%not base64%%%"), "not valid base64"),
        (lambda r: setattr(r, "screenshot", "aGVsbG8gd29ybGQh"), "not a PNG, JPEG or WebP"),
        (lambda r: setattr(r, "prompt", "x" * 9000), "too long"),
        (lambda r: setattr(r, "prompt", "   "), "prompt is empty"),
    ],
)
async def test_argument_errors(server, mutate, expected):
    request = commit("hi")
    mutate(request)
    result = await run_turn(server.stub, request)
    assert result.kinds == ["error_message"]
    assert expected in result.responses[0].error_message
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_screenshot_is_refused_before_decoding(server_factory):
    server = await server_factory(make_settings(**{"limits.max_screenshot_bytes": 1024}))
    request = commit("look", screenshot="A" * 4000)
    result = await run_turn(server.stub, request)
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "too large" in result.responses[0].error_message


async def test_collect_then_commit_uses_the_transcript(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.mode": "echo"}))
    session = str(uuid.uuid4())
    for seq, text in enumerate(["what is", "what is the weather", "what is the"], start=1):
        request = pb.StreamRequest(
            hardware_id=HARDWARE_ID,
            session_id=session,
            phase=pb.REQUEST_PHASE_COLLECT,
            chunk_seq=seq if seq < 3 else 1,
            chunk_text=text,
            screenshot="",
            prompt="",
        )
        result = await run_turn(server.stub, request)
        assert result.kinds == ["end_message"]
        assert result.responses[0].end_message == "COLLECT_ACCEPTED"
        assert result.code == grpc.StatusCode.OK
    # The stale chunk (seq 1 again) was ignored; the COMMIT without a prompt uses the buffer.
    result = await run_turn(server.stub, commit("", session_id=session))
    assert result.text == "what is the weather"


async def test_commit_prompt_merges_with_collected_text(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.mode": "echo"}))
    session = str(uuid.uuid4())
    request = pb.StreamRequest(
        hardware_id=HARDWARE_ID,
        session_id=session,
        phase=pb.REQUEST_PHASE_COLLECT,
        chunk_seq=1,
        chunk_text="open the",
    )
    await run_turn(server.stub, request)
    result = await run_turn(server.stub, commit("the browser please", session_id=session))
    assert result.text == "open the browser please"


async def test_phase_zero_is_a_commit(server):
    request = commit("hello")
    request.phase = pb.REQUEST_PHASE_UNSPECIFIED
    result = await run_turn(server.stub, request)
    assert result.kinds[-1] == "end_message" and "audio_chunk" in result.kinds


async def test_echo_prompt_shows_what_the_llm_received(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.mode": "echo_prompt"}))
    result = await run_turn(server.stub, commit("Tell me a joke"))
    assert "User: Tell me a joke" in result.text
