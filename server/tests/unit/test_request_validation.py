"""Validation of every client field at the edge: control characters, lengths, canonical ids."""

from __future__ import annotations

import re

import pytest

from nexy.config import LimitsSettings
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc.requests import (
    MAX_TOKENS,
    RequestError,
    check_hardware_id,
    check_session_id,
    check_text,
    check_tokens,
    parse_stream_request,
    parse_usage_request,
    parse_welcome_request,
)

LIMITS = LimitsSettings()
SESSION = "3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"
DEVICE = "6B1C2D3E-4F50-4A1B-9C2D-3E4F5A6B7C8D"


@pytest.mark.parametrize(
    ("value", "free_text", "error"),
    [
        ("plain words", False, None),
        ("line one\nline two\ttab\r\n", True, None),
        ("line one\nline two", False, "contains a control character"),
        ("nul\x00inside", True, "contains a control character"),
        ("escape \x1b[31m red", True, "contains a control character"),
        ("delete \x7f", True, "contains a control character"),
        ("c1 \x85 next line", True, "contains a control character"),
        ("right-to-left \u202e override", False, None),
        ("Привет, 世界 👋", True, None),
        ("x" * 20, False, "too long (at most 10 characters)"),
    ],
)
def test_check_text(value: str, free_text: bool, error: str | None) -> None:
    max_chars = 10 if error and "too long" in error else 1000
    if error is None:
        assert check_text("field", value, max_chars, free_text=free_text) == value
    else:
        with pytest.raises(RequestError, match=re.escape(error)):
            check_text("field", value, max_chars, free_text=free_text)


@pytest.mark.parametrize(
    "alias",
    [
        SESSION,
        SESSION.upper(),
        "{" + SESSION.upper() + "}",
        "urn:uuid:" + SESSION,
        SESSION.replace("-", ""),
        "  " + SESSION + "\n",
    ],
)
def test_session_id_aliases_are_one_canonical_id(alias: str) -> None:
    assert check_session_id(alias) == SESSION


@pytest.mark.parametrize("bad", ["", "welcome_1700", SESSION + "\x00", "x" * 10_000, SESSION[:-1]])
def test_session_id_must_be_a_uuid(bad: str) -> None:
    with pytest.raises(RequestError, match="session_id is required"):
        check_session_id(bad)


def test_hardware_id_is_canonical_and_clean() -> None:
    assert check_hardware_id("{" + DEVICE.lower() + "}") == DEVICE
    assert check_hardware_id("urn:uuid:" + DEVICE.replace("-", "").lower()) == DEVICE
    assert check_hardware_id(" serial-42 ") == "serial-42"
    with pytest.raises(RequestError, match="control character"):
        check_hardware_id("dev\x00ice")
    with pytest.raises(RequestError, match="too long"):
        check_hardware_id("d" * 129)


@pytest.mark.parametrize(
    ("count", "ok"), [(0, True), (MAX_TOKENS, True), (-1, False), (2**31, False), (10**15, False)]
)
def test_token_counts_fit_a_32_bit_column(count: int, ok: bool) -> None:
    if ok:
        assert check_tokens("input_tokens", count) == count
    else:
        with pytest.raises(RequestError, match="between 0 and 2147483647"):
            check_tokens("input_tokens", count)


def _usage(**fields: object) -> pb.UsageRequest:
    base: dict[str, object] = {"hardware_id": DEVICE, "source": "client", "model": "gpt-x"}
    return pb.UsageRequest(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"model": "m" * 10_000}, "model is too long"),
        ({"model": "gpt\x00"}, "model contains a control character"),
        ({"source": "s" * 129}, "source is too long"),
        ({"source": "cli\nent"}, "source contains a control character"),
        ({"session_id": "s" * 129}, "session_id is too long"),
        ({"session_id": "abc\x00"}, "session_id contains a control character"),
        ({"hardware_id": "dev\x00"}, "hardware_id contains a control character"),
        ({"output_tokens": -5}, "output_tokens must be between"),
    ],
)
def test_usage_request_refuses(fields: dict[str, object], error: str) -> None:
    with pytest.raises(RequestError, match=re.escape(error)):
        parse_usage_request(_usage(**fields))


def test_usage_request_canonicalises_ids_and_keeps_an_empty_session() -> None:
    record = parse_usage_request(_usage(session_id="{" + SESSION.upper() + "}"))
    assert (record.hardware_id, record.session_id) == (DEVICE, SESSION)
    assert parse_usage_request(_usage()).session_id == ""
    assert parse_usage_request(_usage(session_id="s")).session_id == "s"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "w" * 1001}, "text is too long (at most 1000 characters)"),
        ({"text": "hello\x00"}, "text contains a control character"),
        ({"voice": "en-US-Aria;rm"}, "voice must be at most 64"),
        ({"voice": "v" * 65}, "voice must be at most 64"),
        ({"language": "en\n"}, "language must be at most 64"),
    ],
)
def test_welcome_request_refuses(fields: dict[str, str], error: str) -> None:
    with pytest.raises(RequestError, match=re.escape(error)):
        parse_welcome_request(pb.WelcomeRequest(**fields), LIMITS)


def test_welcome_request_accepts_real_values() -> None:
    request = pb.WelcomeRequest(
        text="Hi!\nHow can I help?",
        session_id="welcome_1700",
        voice="en-US-AriaNeural",
        language="en",
    )
    call = parse_welcome_request(request, LIMITS)
    assert (call.text, call.voice, call.language) == (
        "Hi!\nHow can I help?",
        "en-US-AriaNeural",
        "en",
    )
    assert parse_welcome_request(pb.WelcomeRequest(), LIMITS).voice == ""


@pytest.mark.parametrize("field", ["prompt", "chunk_text"])
def test_stream_request_refuses_nul_in_free_text(field: str) -> None:
    request = pb.StreamRequest(hardware_id=DEVICE, session_id=SESSION, **{field: "hi\x00there"})
    with pytest.raises(RequestError, match=f"{field} contains a control character"):
        parse_stream_request(request, LIMITS)


def test_stream_request_carries_canonical_ids() -> None:
    request = pb.StreamRequest(
        hardware_id=DEVICE, session_id="{" + SESSION.upper() + "}", prompt="a\nb"
    )
    call = parse_stream_request(request, LIMITS)
    assert (call.hardware_id, call.session_id, call.prompt) == (DEVICE, SESSION, "a\nb")
