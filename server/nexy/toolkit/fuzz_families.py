"""The case families of ``fuzz_smoke.py``: each builds one seeded :class:`Case` of its kind."""

from __future__ import annotations

import random
from collections.abc import Iterator

from nexy.toolkit.calls import slow_prompt
from nexy.toolkit.fuzz_cases import (
    BAD_UTF8,
    CHUNK,
    CONTROL,
    HW,
    INTERRUPT,
    ODD_LANGUAGES,
    ODD_VOICES,
    PHASE,
    PROMPT,
    SCREENSHOT,
    SEQ,
    SESSION,
    STREAM_AUDIO,
    U_HW,
    U_IN,
    U_MODEL,
    U_OUT,
    U_SESSION,
    U_SOURCE,
    USAGE,
    W_LANG,
    W_SESSION,
    W_TEXT,
    W_VOICE,
    WELCOME,
    Builder,
    Call,
    Case,
    Fields,
    broken_wire,
    collect_fields,
    commit_fields,
    device,
    encode,
    hostile_string,
    huge_screenshot,
    id_forms,
    num,
    session,
    text,
    usage_fields,
    welcome_fields,
)

# Every string field of every request, with the size that counts as "oversized" for it.
STRING_FIELDS: dict[str, dict[int, int]] = {
    STREAM_AUDIO: {
        PROMPT: 100_000,
        SCREENSHOT: 50_000,
        HW: 10_000,
        SESSION: 10_000,
        CHUNK: 1_000_000,
    },
    WELCOME: {W_TEXT: 20_000, W_SESSION: 10_000, W_VOICE: 500, W_LANG: 1000},
    USAGE: {U_HW: 10_000, U_SESSION: 100_000, U_SOURCE: 100_000, U_MODEL: 100_000},
    INTERRUPT: {1: 10_000},
}
# Invalid by the spec (§3.1): these must be refused, whatever else the server does.
_REFUSED_DEVICES = ("", " ", "unknown", "UNKNOWN", "\x00" * 36)
_BARGE_IN_S = 0.4  # accepted turns are cancelled quickly: the slots stay free for the canary


def _base(rpc: str, rng: random.Random) -> Fields:
    if rpc == STREAM_AUDIO:
        return commit_fields(rng)
    if rpc == WELCOME:
        return welcome_fields()
    if rpc == USAGE:
        return usage_fields(rng)
    return {1: text(1, device(rng))}


def _call(rpc: str, fields: Fields, *, must_refuse: bool = False) -> Call:
    cancel = _BARGE_IN_S * 5 if rpc == STREAM_AUDIO else None
    return Call(rpc, encode(fields), cancel_after_s=cancel, must_refuse=must_refuse)


def ids(rng: random.Random, max_prompt: int) -> Case:
    """Odd, oversized and alias forms of hardware_id and session_id in a COMMIT."""
    value = rng.choice(id_forms(rng))
    field = rng.choice((HW, SESSION))
    refuse = field == HW and value in _REFUSED_DEVICES
    fields = commit_fields(rng) | {field: text(field, value)}
    return Case("ids", (_call(STREAM_AUDIO, fields, must_refuse=refuse),))


def _hostile_field(family: str, rng: random.Random, pick: int) -> Case:
    rpc = rng.choice(list(STRING_FIELDS))
    field, big = rng.choice(list(STRING_FIELDS[rpc].items()))
    value: str | bytes = hostile_string(rng, big)
    if pick >= 0:  # the family's own kind of value: 0 undecodable bytes, 1 control characters
        value = rng.choice(BAD_UTF8) if pick == 0 else rng.choice(CONTROL)
    return Case(family, (_call(rpc, _base(rpc, rng) | {field: text(field, value)}),))


def bad_utf8(rng: random.Random, max_prompt: int) -> Case:
    """Undecodable bytes in one string field of any RPC."""
    return _hostile_field("bad_utf8", rng, 0)


def control_chars(rng: random.Random, max_prompt: int) -> Case:
    """NUL, escape sequences, bidi overrides and BOMs in one string field of any RPC."""
    return _hostile_field("control_chars", rng, 1)


def mixed_fields(rng: random.Random, max_prompt: int) -> Case:
    """A random hostile value (any kind, oversized included) in one field of any RPC."""
    return _hostile_field("mixed_fields", rng, -1)


def broken_messages(rng: random.Random, max_prompt: int) -> Case:
    """Truncated varints, wrong wire types, lengths past the end, field 0, groups."""
    rpc = rng.choice(list(STRING_FIELDS))
    return Case("broken_wire", (Call(rpc, broken_wire(rng, encode(_base(rpc, rng)))),))


def oversized(rng: random.Random, max_prompt: int) -> Case:
    """Prompts past the limit, huge/garbage screenshots, 1 MB COLLECT text, huge usage rows."""
    pick = rng.randrange(6)
    if pick == 0:
        size = rng.choice((max_prompt + 1, 100_000, 2_000_000))
        call = _call(STREAM_AUDIO, commit_fields(rng, "x" * size), must_refuse=True)
    elif pick == 1:
        shot = huge_screenshot(rng)
        refuse = not isinstance(shot, str) or shot.startswith(("%", "data:", "AAAA"))
        fields = commit_fields(rng) | {SCREENSHOT: text(SCREENSHOT, shot)}
        call = _call(STREAM_AUDIO, fields, must_refuse=refuse)
    elif pick == 2:
        call = _call(STREAM_AUDIO, collect_fields("y" * 1_000_000, 1, device(rng), session(rng)))
    elif pick == 3:
        call = _call(WELCOME, welcome_fields("Hello there. " * 1600))  # ~20k characters
    elif pick == 4:
        tokens = rng.choice((-1, -(2**31), 2**40, 2**31 - 1))
        fields = usage_fields(rng) | {U_IN: num(U_IN, tokens), U_OUT: num(U_OUT, tokens)}
        fields[U_MODEL] = text(U_MODEL, "m" * 100_000)
        call = _call(USAGE, fields)
    else:  # more than the 16 MiB inbound limit, the transport itself must refuse it
        call = _call(
            STREAM_AUDIO, commit_fields(rng) | {SCREENSHOT: text(SCREENSHOT, "A" * 17_000_000)}
        )
    return Case("oversized", (call,))


def voices(rng: random.Random, max_prompt: int) -> Case:
    """GenerateWelcomeAudio with odd voices and languages (eSpeak must never see them raw)."""
    greeting = rng.choice(("Hi there.", "Привет, как дела?", "", "12345"))
    fields = welcome_fields(greeting)
    fields[W_VOICE] = text(W_VOICE, rng.choice(ODD_VOICES))
    fields[W_LANG] = text(W_LANG, rng.choice(ODD_LANGUAGES))
    return Case("voices", (_call(WELCOME, fields),))


def phases(rng: random.Random, max_prompt: int) -> Case:
    """Phases out of range (must be refused) and negative or huge chunk_seq in a COLLECT."""
    if rng.random() < 0.5:
        phase = rng.choice((3, 99, -1, 2**31 - 1, 2**32 + 5))
        fields = commit_fields(rng) | {PHASE: num(PHASE, phase)}
        return Case("phases", (_call(STREAM_AUDIO, fields, must_refuse=True),))
    fields = collect_fields("hello", 1, device(rng), session(rng))
    fields[SEQ] = num(SEQ, rng.choice((-1, 2**31 - 1, -(2**31), 2**40)))
    return Case("phases", (_call(STREAM_AUDIO, fields),))


def collect_storm(rng: random.Random, max_prompt: int) -> Case:
    """Many COLLECTs of one session in random order, then a COMMIT that uses the buffer."""
    hw, sid = device(rng), session(rng)
    seqs = list(range(1, rng.randint(10, 40)))
    rng.shuffle(seqs)
    calls = [
        _call(STREAM_AUDIO, collect_fields(" ".join(["word"] * seq), seq, hw, sid)) for seq in seqs
    ]
    final = collect_fields("", 0, hw, sid) | {PHASE: num(PHASE, 2)}
    calls.append(Call(STREAM_AUDIO, encode(final), cancel_after_s=rng.uniform(0, 1.0)))
    return Case("collect_storm", tuple(calls))


def cancels(rng: random.Random, max_prompt: int) -> Case:
    """A real turn cancelled at a random point (before admission, mid-LLM, mid-audio)."""
    fields = commit_fields(rng, slow_prompt(rng.choice((200, 600, 1200))))
    call = Call(STREAM_AUDIO, encode(fields), cancel_after_s=rng.uniform(0, 1.5))
    return Case("cancels", (call,))


def interrupt_flood(rng: random.Random, max_prompt: int) -> Case:
    """A running turn and a flood of InterruptSession for its device (and odd devices)."""
    hw = device(rng)
    turn = commit_fields(rng, slow_prompt(600)) | {HW: text(HW, hw)}
    calls = [Call(STREAM_AUDIO, encode(turn), cancel_after_s=3.0)]
    for _ in range(rng.randint(5, 25)):
        target = hw if rng.random() < 0.8 else rng.choice(id_forms(rng))
        calls.append(Call(INTERRUPT, encode({1: text(1, target)})))
    return Case("interrupt_flood", tuple(calls), parallel=True)


def aliases(rng: random.Random, max_prompt: int) -> Case:
    """One session sent twice at once under two spellings: ALREADY_EXISTS or both served."""
    hw, sid = device(rng), session(rng)
    forms = (sid, sid.upper(), f"{{{sid}}}", f"urn:uuid:{sid}", f" {sid} ")
    calls = []
    for form in rng.sample(forms, 2):
        fields = commit_fields(rng, slow_prompt(300)) | {HW: text(HW, rng.choice((hw, hw.lower())))}
        fields[SESSION] = text(SESSION, form)
        calls.append(Call(STREAM_AUDIO, encode(fields), cancel_after_s=1.5))
    return Case("aliases", tuple(calls), parallel=True)


FAMILIES: dict[str, Builder] = {
    "ids": ids,
    "bad_utf8": bad_utf8,
    "control_chars": control_chars,
    "mixed_fields": mixed_fields,
    "broken_wire": broken_messages,
    "oversized": oversized,
    "voices": voices,
    "phases": phases,
    "collect_storm": collect_storm,
    "cancels": cancels,
    "interrupt_flood": interrupt_flood,
    "aliases": aliases,
}
# How often each family is drawn: the storms and floods carry many requests per case already,
# the 17 MiB and 2 MB bodies are expensive to build and send, so they come less often.
WEIGHTS: dict[str, int] = {name: 10 for name in FAMILIES} | {
    "collect_storm": 2,
    "interrupt_flood": 3,
    "oversized": 4,
}


def generate(seed: int, max_prompt: int) -> Iterator[Case]:
    """An endless, reproducible stream of cases (the same seed gives the same requests)."""
    rng = random.Random(seed)
    names = list(FAMILIES)
    weights = [WEIGHTS[name] for name in names]
    while True:
        name = rng.choices(names, weights)[0]
        yield FAMILIES[name](rng, max_prompt)
