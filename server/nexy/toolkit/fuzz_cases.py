"""Hostile requests for ``fuzz_smoke.py``: seeded mutations of valid requests, as raw bytes.

Python strings cannot carry invalid UTF-8 and the generated classes refuse wrong wire types,
so every request is encoded here by hand and sent through a generic call without a serializer.
A :class:`Case` is one or more calls (a COLLECT storm, a turn plus an interrupt flood, …); each
family exercises one item of issue 11 and is counted separately in the report.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

STREAM_AUDIO, INTERRUPT = "StreamAudio", "InterruptSession"
WELCOME, USAGE = "GenerateWelcomeAudio", "ReportUsage"
STREAMING_RPCS = (STREAM_AUDIO, WELCOME)
COMMIT, COLLECT = 2, 1
# Field numbers of the wire contract (SPEC §1).
PROMPT, SCREENSHOT, WIDTH, HEIGHT, HW, SESSION, PHASE, SEQ, CHUNK = range(1, 10)
W_TEXT, W_SESSION, W_VOICE, W_LANG = range(1, 5)
U_HW, U_SESSION, U_SOURCE, U_IN, U_OUT, U_MODEL = range(1, 7)
QUICK = "Hello"

Fields = dict[int, bytes]  # field number -> its full encoding (key included)


@dataclass(frozen=True, slots=True)
class Call:
    """One request: the RPC, its raw bytes, and when the tool cancels it (barge-in)."""

    rpc: str
    payload: bytes
    cancel_after_s: float | None = None
    # The spec says this request must be refused (INVALID_ARGUMENT and the like): a reply with
    # text or audio is a finding, not a pass.
    must_refuse: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    """One probe of a family: its calls run one after another, or all at once."""

    family: str
    calls: tuple[Call, ...]
    parallel: bool = False


# --- protobuf wire encoding -------------------------------------------------------------


def varint(value: int) -> bytes:
    """A base-128 varint; negative numbers as 64-bit two's complement (ten bytes), like protoc."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def num(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def text(number: int, value: str | bytes) -> bytes:
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return key(number, 2) + varint(len(data)) + data


def encode(fields: Fields) -> bytes:
    return b"".join(fields[n] for n in sorted(fields))


# --- valid requests, the starting points ----------------------------------------------------


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)  # seeded: a run can be replayed


def device(rng: random.Random) -> str:
    return str(_uuid(rng)).upper()


def session(rng: random.Random) -> str:
    return str(_uuid(rng))


def commit_fields(rng: random.Random, prompt: str = QUICK, **extra: bytes) -> Fields:
    fields = {
        PROMPT: text(PROMPT, prompt),
        SCREENSHOT: text(SCREENSHOT, ""),
        HW: text(HW, device(rng)),
        SESSION: text(SESSION, session(rng)),
        PHASE: num(PHASE, COMMIT),
        SEQ: num(SEQ, 0),
        CHUNK: text(CHUNK, ""),
    }
    return fields | {int(k[1:]): v for k, v in extra.items()}


def collect_fields(chunk: str | bytes, seq: int, hw: str, sid: str) -> Fields:
    return {
        PROMPT: text(PROMPT, ""),
        HW: text(HW, hw),
        SESSION: text(SESSION, sid),
        PHASE: num(PHASE, COLLECT),
        SEQ: num(SEQ, seq),
        CHUNK: text(CHUNK, chunk),
    }


def welcome_fields(greeting: str = "Hi there.") -> Fields:
    return {
        W_TEXT: text(W_TEXT, greeting),
        W_SESSION: text(W_SESSION, "welcome_1700000000"),
        W_VOICE: text(W_VOICE, ""),
        W_LANG: text(W_LANG, ""),
    }


def usage_fields(rng: random.Random) -> Fields:
    return {
        U_HW: text(U_HW, device(rng)),
        U_SESSION: text(U_SESSION, session(rng)),
        U_SOURCE: text(U_SOURCE, "fuzz"),
        U_IN: num(U_IN, 10),
        U_OUT: num(U_OUT, 20),
        U_MODEL: text(U_MODEL, "fuzz-model"),
    }


# --- the hostile values ---------------------------------------------------------------------

BAD_UTF8 = (b"\xff\xfe", b"ab\xc3\x28cd", b"\xed\xa0\x80", b"Hello\x80", b"\xf4\x90\x80\x80")
CONTROL = ("Hel\x00lo", "\x00", "\x01\x02\x07\x1b[31mHello", "\u202eHello", "\ufeffHello\r\n")
ODD_TEXT = ("   ", "\t\n", "😀" * 50, "e\u0301" * 200, "ﷺ" * 40, "a" * 3 + "\u200b" * 500)
ODD_VOICES = (
    "en+" + "abcdefghijklmnopqrstuvwxyzabcdefghijk",  # 37 letters after "en+"
    "../../etc/passwd",
    "ru-RU",
    "zz",
    "v" * 500,
    "en\x00us",
    "--help",
    "-v en",
    "en-US-AriaNeural; rm -rf /",
    "ru",
    "",
)
ODD_LANGUAGES = ("ru", "zz", "ru-RU", "../../etc", "", "x" * 1000, "en\x00", "EN")


def id_forms(rng: random.Random) -> list[str | bytes]:
    """Odd and alias forms of a device or session id (the first few are valid UUID aliases)."""
    base = _uuid(rng)
    return [
        str(base).upper(),
        f"{{{base}}}",
        f"urn:uuid:{base}",
        f"  {base}  ",
        f"{base}\n",
        base.hex,
        "unknown",
        "UNKNOWN",
        "",
        " ",
        "x" * 10_000,
        f"{base}\x00",
        "\x00" * 36,
        rng.choice(BAD_UTF8),
        "../" * 20,
    ]


def hostile_string(rng: random.Random, big: int) -> str | bytes:
    """One hostile value for any string field; ``big`` is the oversized length for this field."""
    pick = rng.randrange(5)
    if pick == 0:
        return rng.choice(BAD_UTF8)
    if pick == 1:
        return rng.choice(CONTROL)
    if pick == 2:
        return rng.choice(ODD_TEXT)
    if pick == 3:
        return "x" * big
    return rng.choice(id_forms(rng))


def broken_wire(rng: random.Random, valid: bytes) -> bytes:
    """Bytes that are not a well-formed message: the decoder must refuse them politely."""
    pick = rng.randrange(7)
    if pick == 0:
        return valid + b"\x08\xff\xff"  # truncated varint
    if pick == 1:
        return valid + key(PROMPT, 0) + varint(5)  # a string field sent as a varint
    if pick == 2:
        return valid + key(PROMPT, 2) + varint(2**31) + b"abc"  # length far past the end
    if pick == 3:
        return valid + key(0, 2) + varint(1) + b"x"  # field number 0
    if pick == 4:
        return valid + key(HW, 3) + key(HW, 4)  # a (deprecated) group where a string goes
    if pick == 5:
        return valid[: max(1, len(valid) // 2)]  # cut in the middle of a field
    return valid + key(4242, 2) + varint(3) + b"odd"  # an unknown field: must be ignored


def huge_screenshot(rng: random.Random) -> str | bytes:
    choices: list[str | bytes] = [
        "%%% not base64 %%%",
        "data:image/png;base64,iVBORw0KGgo=",
        base64.b64encode(rng.randbytes(3000)).decode(),  # valid base64, not an image
        "A" * 15_000_001,  # decodes to more than the 10 MiB default limit
        b"\xff" * 100,
    ]
    return rng.choice(choices)


Builder = Callable[[random.Random, int], Case]
