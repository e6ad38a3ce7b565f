"""Tests for incremental extraction of the spoken reply from a streamed LLM reply."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from nexy.turn.extract import ReplyExtractor, ReplyTail

Split = Callable[[str], list[str]]


def whole(reply: str) -> list[str]:
    """The reply as one fragment."""
    return [reply]


def chars(reply: str) -> list[str]:
    """The reply one character at a time."""
    return list(reply)


def random_split(seed: int) -> Split:
    """Fragments of 1 to 7 characters, cut at positions drawn from a fixed seed."""

    def split(reply: str) -> list[str]:
        rng, parts, i = random.Random(seed), [], 0
        while i < len(reply):
            size = rng.randint(1, 7)
            parts.append(reply[i : i + size])
            i += size
        return parts

    return split


SPLITS: dict[str, Split] = {
    "whole": whole,
    "chars": chars,
    **{f"random{seed}": random_split(seed) for seed in range(4)},
}


def extract(parts: list[str]) -> tuple[str, str | None, dict[str, object]]:
    """Feed the fragments; return everything spoken (feeds plus tail), command and args."""
    extractor = ReplyExtractor()
    spoken = "".join(extractor.feed(part) for part in parts)
    tail = extractor.finish()
    return spoken + tail.text, tail.command, tail.args


# (id, reply, spoken text, command, args)
CASES: list[tuple[str, str, str, str | None, dict[str, object]]] = [
    ("text-only", '{"text": "Hello, world!"}', "Hello, world!", None, {}),
    (
        "command-after-text",
        '{"text": "Opening.", "command": "open_app", "args": {"name": "Safari"}}',
        "Opening.",
        "open_app",
        {"name": "Safari"},
    ),
    (
        "command-before-text",
        '{"command": "volume", "args": {"level": 3, "up": true}, "text": "Louder."}',
        "Louder.",
        "volume",
        {"level": 3, "up": True},
    ),
    (
        "nested-text-not-spoken",
        '{"command": "note", "args": {"text": "secret", "x": [{"text": "no"}]}, "text": "Saved."}',
        "Saved.",
        "note",
        {"text": "secret", "x": [{"text": "no"}]},
    ),
    (
        "only-nested-text",
        '{"command": "note", "args": {"text": "secret"}}',
        "",
        "note",
        {"text": "secret"},
    ),
    (
        "escapes",
        r'{"text": "Caf\u00e9 \"q\" a\\b\/c\nnew\tline \u041f\u0440\u0438"}',
        'Café "q" a\\b/c\nnew\tline При',
        None,
        {},
    ),
    ("surrogate-pair", r'{"text": "smile \ud83d\ude00!"}', "smile 😀!", None, {}),
    ("lone-surrogate", r'{"text": "a\ud83d b\ude00"}', "a\ufffd b\ufffd", None, {}),
    ("escaped-quote-key", r'{"te\u0078t": "Hi"}', "Hi", None, {}),
    ("raw-unicode", '{"text": "Привет, мир 你好"}', "Привет, мир 你好", None, {}),
    ("leading-whitespace", '\n  {"text": "Hi"}', "Hi", None, {}),
    ("json-fence", '```json\n{"text": "Hi", "command": "c"}\n```', "Hi", "c", {}),
    ("bare-fence", '```\n{"text": "Hi"}\n```\n', "Hi", None, {}),
    ("fence-tag-then-brace", '```json {"text": "Hi"}```', "Hi", None, {}),
    ("fenced-plain-text", "```\nJust words: fine.\n```", "Just words: fine.\n", None, {}),
    (
        "prose-then-object",
        'Sure! Here it is: {"text": "Hi", "command": "c"}',
        "Sure! Here it is: Hi",
        "c",
        {},
    ),
    (
        "prose-then-fenced-object",
        'Sure:\n```json\n{"text": "Hi", "command": "c"}\n```\nHope that helps!',
        "Sure: Hi",
        "c",
        {},
    ),
    ("prose-without-colon", 'Okay {"text": "Hi"}', "Okay Hi", None, {}),
    ("prose-after-object", '{"text": "Hi"} Let me know: {"text": "x"}', "Hi", None, {}),
    (
        "plain-text",
        "Just a plain answer. Nothing else!",
        "Just a plain answer. Nothing else!",
        None,
        {},
    ),
    (
        "plain-whitespace-kept",
        "  Two  spaces\n\nand lines ",
        "  Two  spaces\n\nand lines ",
        None,
        {},
    ),
    ("braces-in-text", "Use a {b} c, {} and {x: 1}.", "Use a {b} c, {} and {x: 1}.", None, {}),
    (
        "object-without-text-in-prose",
        'Data: {"a": {"b": [1, "}"]}} ok',
        'Data: {"a": {"b": [1, "}"]}} ok',
        None,
        {},
    ),
    ("text-not-string-in-prose", 'Set {"text": 5} now', 'Set {"text": 5} now', None, {}),
    ("colons-in-text", "Time: 12:30. Note:  spaced", "Time: 12:30. Note:  spaced", None, {}),
    ("trailing-colon", "It ends with a colon: \n", "It ends with a colon: \n", None, {}),
    ("backticks-in-text", "Run `ls -la` now, or ``x``.", "Run `ls -la` now, or ``x``.", None, {}),
    ("code-fence-in-prose", "See:\n```py\nx = 1\n```", "See:\n```py\nx = 1\n```", None, {}),
    ("truncated-in-text", '{"text": "Partial answ', "Partial answ", None, {}),
    ("truncated-in-escape", '{"text": "Cut \\u00', "Cut ", None, {}),
    ("truncated-after-text", '{"text": "Done.", "command": "op', "Done.", None, {}),
    ("truncated-before-text", '{"command": "op", "te', "", None, {}),
    ("truncated-prose-object", 'Sure: {"a": {"b": ', 'Sure: {"a": {"b": ', None, {}),
    ("no-text-key", '{"command": "stop"}', "", "stop", {}),
    ("text-not-string", '{"text": 42, "command": "stop"}', "", "stop", {}),
    ("args-not-object", '{"text": "x", "command": "c", "args": [1]}', "x", "c", {}),
    ("command-not-string", '{"text": "x", "command": 5, "args": {"a": 1}}', "x", None, {"a": 1}),
    ("raw-newline-in-string", '{"text": "a\nb", "command": "c"}', "a\nb", "c", {}),
    ("invalid-leading-object", "{b} is a set.", "{b} is a set.", None, {}),
    ("empty", "", "", None, {}),
]


@pytest.mark.parametrize("split", SPLITS.values(), ids=SPLITS.keys())
@pytest.mark.parametrize(
    ("reply", "spoken", "command", "args"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_extracts_reply_whatever_the_split(
    reply: str, spoken: str, command: str | None, args: dict[str, object], split: Split
) -> None:
    assert extract(split(reply)) == (spoken, command, args)


@pytest.mark.parametrize(
    ("reply", "spoken"), [case[1:3] for case in CASES], ids=[c[0] for c in CASES]
)
def test_every_two_part_split_speaks_the_same(reply: str, spoken: str) -> None:
    for cut in range(len(reply) + 1):
        assert extract([reply[:cut], reply[cut:]])[0] == spoken, cut


@pytest.mark.parametrize(
    ("parts", "emitted"),
    [
        # The text value streams as it arrives; JSON syntax is never emitted.
        (['{"te', 'xt": "Hel', "lo", '"}'], ["", "Hel", "lo", ""]),
        # An escape split across fragments is held back until complete.
        (['{"text": "caf\\u00', "e9 ok", '"}'], ["caf", "é ok", ""]),
        (['{"text": "a\\', 'nb"}'], ["a", "\nb"]),
        (['{"text": "\\ud83d', "\\ude00", '!"}'], ["", "😀", "!"]),
        # Plain text streams at once; a '{' is held until it proves to be plain text.
        (["Hello wor", "ld"], ["Hello wor", "ld"]),
        (["a {", "b} c"], ["a ", "{b} c"]),
        # ':' plus whitespace may lead in to an object: held until the next character decides.
        (["Note: ", "fine"], ["Note", ": fine"]),
        (["Here it is: ", '{"text": "Hi"}'], ["Here it is", ": Hi"]),
        # The fence header is held, then dropped.
        (["```js", 'on\n{"text": "Hi"}'], ["", "Hi"]),
        # After the object closes nothing more is spoken.
        (['{"text": "A"}', " trailing prose"], ["A", ""]),
    ],
)
def test_emits_text_as_soon_as_it_is_known(parts: list[str], emitted: list[str]) -> None:
    extractor = ReplyExtractor()
    assert [extractor.feed(part) for part in parts] == emitted
    assert extractor.finish().text == ""


@pytest.mark.parametrize(
    ("parts", "tail"),
    [
        (["Ends with: "], ReplyTail(": ", None, {})),
        (["Brace {"], ReplyTail("{", None, {})),
        (["Tick `"], ReplyTail("`", None, {})),
        (['{"text": "x\\u12'], ReplyTail("", None, {})),
        (['{"text": "x\\ud83d'], ReplyTail("\ufffd", None, {})),
        (['{"command": "go", "text": "Go."}'], ReplyTail("", "go", {})),
    ],
)
def test_finish_returns_held_back_text(parts: list[str], tail: ReplyTail) -> None:
    extractor = ReplyExtractor()
    for part in parts:
        extractor.feed(part)
    assert extractor.finish() == tail


@pytest.mark.parametrize("split", SPLITS.values(), ids=SPLITS.keys())
def test_fence_language_tag_is_never_spoken(split: Split) -> None:
    for reply in ('```json\n{"text": "ok"}\n```', 'Here:\n```json\n{"text": "ok"}\n```'):
        spoken = extract(split(reply))[0]
        assert "json" not in spoken
        assert "`" not in spoken
        assert spoken.endswith("ok")


PROSE = "Plain: prose with {braces} and `ticks` and colons: here. " * 400
NESTED = "Sure: " + '{"a": {"b": ' * 2000
LONG_STRING = "Sure: " + '{"command": "x", "args": {"k": "' + "v" * 20000 + '"}}'
TICKS = "x " + "```" * 7000


@pytest.mark.parametrize(
    ("reply", "spoken"),
    [
        ('{"text": "' + "word \\u00e9\\n " * 1500 + '", "command": "x"}', "word é\n " * 1500),
        (PROSE, PROSE),
        (NESTED, NESTED),
        (LONG_STRING, LONG_STRING),
        (TICKS, TICKS),
    ],
    ids=["json", "prose", "nested-truncated", "long-string-in-prose", "many-ticks"],
)
def test_large_reply_one_char_at_a_time_is_linear(reply: str, spoken: str) -> None:
    started = time.perf_counter()
    extractor = ReplyExtractor()
    text = "".join(extractor.feed(c) for c in reply) + extractor.finish().text
    # About 0.1 s when linear; a quadratic rescan of these ~20 kB replies takes minutes.
    assert time.perf_counter() - started < 3.0
    assert text == spoken


def test_prose_before_nested_object_in_string_still_finds_the_object() -> None:
    # The first '{' fails only after reading a string that contains the real object's '{'.
    reply = 'x {" then {"text": "Hi", "command": "c"}'
    for split in SPLITS.values():
        assert extract(split(reply)) == ('x {" then Hi', "c", {})
