"""Incremental extraction of the spoken reply from a streamed LLM reply.

The model is asked for one JSON object, ``{"text": ..., "command": ..., "args": {...}}``, but it
streams it in arbitrary fragments, may wrap it in a code fence and may put prose around it.
:class:`ReplyExtractor` speaks the decoded ``"text"`` value as soon as its characters arrive,
speaks plain prose as is, and reports the command when the stream ends. A character-level state
machine does the work, so the cost is linear in the reply whatever the fragment boundaries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

_JSON_SPACE = frozenset(" \t\r\n")
_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
# What may still be waiting for characters: a high surrogate, then part of an escape.
_UNFINISHED = re.compile(r"(?:\\u[dD][89abAB][0-9a-fA-F]{2})?(?:\\(?:u[0-9a-fA-F]{0,3})?)?")
_SCALAR = frozenset("0123456789+-.eEtruefalsn")
_REPLACEMENT = "\ufffd"
_PROSE_SPECIAL = re.compile(r"[:{`]")  # the only prose characters that may start a hold

# Scanner states (what may come next), events (what a character meant) and string kinds.
_S_VALUE, _S_KEY_OR_END, _S_KEY, _S_COLON, _S_AFTER, _S_ITEM_OR_END, _S_STRING, _S_SCALAR = range(8)
_OK, _ERROR, _TEXT_START, _CLOSED = range(4)
_OTHER, _KEY, _TEXT = range(3)

# Extractor states. _GAP holds whitespace at the start, after an opening fence or after a ':'
# (it may lead in to an object); _HEADER is the rest of a fence's first line ("json");
# _FENCE_GAP is whitespace after a fence opened mid-prose; _CANDIDATE is a held '{' not yet
# known to carry "text"; _OBJECT speaks the reply object's "text"; _DONE ignores the rest.
_GAP, _PROSE, _TICKS, _HEADER, _FENCE_GAP, _CANDIDATE, _OBJECT, _DONE = range(8)


@dataclass(frozen=True, slots=True)
class ReplyTail:
    """What is left once the stream ends: unspoken text and the reply's command."""

    text: str
    command: str | None
    args: dict[str, object]


def _decode(raw: str) -> str:
    """Decode a finished run of JSON string text; keep a malformed escape's characters."""
    try:
        text = json.loads(f'"{raw}"', strict=False)
    except ValueError:
        text = raw.replace("\\", "")
    # A lone surrogate cannot be encoded as UTF-8 downstream, so it becomes U+FFFD.
    return str(text).encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class _StringDecoder:
    """Decodes a JSON string body char by char, holding back an unfinished escape."""

    __slots__ = ("_pending", "closed")

    def __init__(self) -> None:
        self._pending = ""  # an unfinished escape, or a high surrogate awaiting its low half
        self.closed = False

    def feed(self, c: str) -> str:
        """Consume one character; return the decoded text it completes."""
        pending = self._pending
        if not pending and c != "\\":
            self.closed = c == '"'
            return "" if self.closed else c
        if c == '"' and not pending.endswith("\\"):
            self.closed = True
            return self.end()
        pending += c
        self._pending = pending if _UNFINISHED.fullmatch(pending) else ""
        return "" if self._pending else _decode(pending)

    def end(self) -> str:
        """The string ended early: drop a cut escape, flag a lone high surrogate."""
        pending, self._pending = self._pending, ""
        return _REPLACEMENT if _HIGH_SURROGATE.match(pending) else ""


class _JsonScanner:
    """Validates one JSON object char by char and decodes its top-level "text" string."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.braces: list[int] = []  # step numbers of the structural '{' seen
        self._steps = 0
        self._stack: list[str] = []
        self._state = _S_VALUE
        self._kind = _OTHER
        self._key = ""  # the first characters of the last key: enough to recognise "text"
        self._decoder = _StringDecoder()
        self._text_seen = False
        self.text_closed = False  # the "text" string's closing quote has been read

    def step(self, c: str) -> int:
        """Consume one character; return _OK, _ERROR, _TEXT_START or _CLOSED."""
        self._steps += 1
        state = self._state
        if state == _S_STRING:
            return self._string(c)
        if state == _S_SCALAR:
            if c in _SCALAR:
                return _OK
            state = self._state = _S_AFTER
        if c in _JSON_SPACE:
            return _OK
        if state == _S_VALUE or (state == _S_ITEM_OR_END and c != "]"):
            return self._value(c)
        if c in "}]" and state in (_S_KEY_OR_END, _S_ITEM_OR_END, _S_AFTER):
            if (c == "}") != (self._stack[-1] == "{"):
                return _ERROR
            self._stack.pop()
            self._state = _S_AFTER
            return _OK if self._stack else _CLOSED
        if c == '"' and state in (_S_KEY_OR_END, _S_KEY):
            self._state, self._kind, self._key = _S_STRING, _KEY, ""
            self._decoder = _StringDecoder()
        elif c == ":" and state == _S_COLON:
            self._state = _S_VALUE
        elif c == "," and state == _S_AFTER:
            self._state = _S_KEY if self._stack[-1] == "{" else _S_VALUE
        else:
            return _ERROR
        return _OK

    def end(self) -> str:
        """The stream ended: return what the text decoder still held."""
        return self._decoder.end() if self._state == _S_STRING and self._kind == _TEXT else ""

    def _value(self, c: str) -> int:
        if c == '"':
            self._state, self._kind, self._decoder = _S_STRING, _OTHER, _StringDecoder()
            # Only the first "text" member of the outermost object is the spoken reply.
            if len(self._stack) == 1 and self._key == "text" and not self._text_seen:
                self._kind, self._text_seen = _TEXT, True
                return _TEXT_START
        elif c in "{[":
            self._stack.append(c)
            self._state = _S_KEY_OR_END if c == "{" else _S_ITEM_OR_END
            if c == "{":
                self.braces.append(self._steps - 1)
        elif self._stack and c in "-0123456789tfn":
            self._state = _S_SCALAR
        else:
            return _ERROR
        return _OK

    def _string(self, c: str) -> int:
        piece = self._decoder.feed(c)
        if self._kind == _KEY:
            self._key = (self._key + piece)[:5]
        elif piece and self._kind == _TEXT:
            self.out.append(piece)
        if self._decoder.closed:
            self._state = _S_COLON if self._kind == _KEY else _S_AFTER
            self.text_closed = self.text_closed or self._kind == _TEXT
        return _OK


def _command_of(raw: list[str] | None) -> tuple[str | None, dict[str, object]]:
    """The command and args of the reply object's raw text, or (None, {}) if it is unusable."""
    try:
        # strict=False: models put raw newlines inside strings; that should not lose the command.
        reply = json.loads("".join(raw), strict=False) if raw is not None else None
    except (ValueError, RecursionError):
        return None, {}
    if not isinstance(reply, dict):
        return None, {}
    command, args = reply.get("command"), reply.get("args")
    return (command if isinstance(command, str) else None), (args if isinstance(args, dict) else {})


class ReplyExtractor:
    """Turns a streamed LLM reply into spoken text as it arrives, and finds its command."""

    def __init__(self) -> None:
        self._state = _GAP
        self._at_start = True  # nothing spoken yet: a leading object or fence is the reply itself
        self._fenced = False  # inside a fence that opened the reply: its closing ``` is dropped
        self._held: list[str] = []  # text whose fate depends on what follows
        self._held_at = self._pos = self._fed = 0  # stream offsets: _held[0], current char, end
        # Offsets of '{' and '`' that a failed guess already explained; read again, they are
        # plain text, so a nested object is never rescanned (rereading stays linear).
        self._inert: set[int] = set()
        self._retry: tuple[str, int] | None = None  # held text to read again, and its offset
        # Backticks in the current run; where that run and the candidate '{' sit in _held.
        self._ticks = self._tick_at = self._brace_at = 0
        self._scanner = _JsonScanner()
        self._raw: list[str] | None = None  # the reply object's raw text, parsed at finish()
        self._out: list[str] = []
        self._handlers: dict[int, Callable[[str], None]] = {
            _GAP: self._gap,
            _PROSE: self._prose,
            _TICKS: self._tick,
            _HEADER: self._fence,
            _FENCE_GAP: self._fence,
            _CANDIDATE: self._candidate,
            _OBJECT: self._object,
        }

    def feed(self, fragment: str) -> str:
        """Consume one streamed fragment; return the spoken text it made available."""
        self._run(fragment, self._fed)
        self._fed += len(fragment)
        if not self._held:
            self._inert.clear()  # nothing is held, so nothing read so far is read again
        return self._take()

    @property
    def text_complete(self) -> bool:
        """The reply object's "text" has closed: no more spoken text can follow, so the last
        sentence need not wait for the rest of the object (its command) or the stream's end."""
        return self._raw is not None and self._scanner.text_closed

    def finish(self) -> ReplyTail:
        """End of stream: return the held-back text and the reply's command."""
        while self._state not in (_PROSE, _OBJECT, _DONE):
            if self._at_start and self._state in (_HEADER, _CANDIDATE):
                self._state = _DONE  # a cut fence header or object without "text": syntax only
            elif self._state == _GAP:
                self._release()
            else:
                self._fail()
                self._run("", 0)
        if self._state == _OBJECT:
            self._out.append(self._scanner.end())
        return ReplyTail(self._take(), *_command_of(self._raw))

    def _take(self) -> str:
        text = "".join(self._out)
        self._out.clear()
        return text

    def _run(self, text: str, base: int) -> None:
        work = [(text, 0, base)]  # (text, next index, offset of text[0])
        while work:
            s, i, base = work.pop()
            while self._retry is None and i < len(s) and self._state != _DONE:
                if self._state == _PROSE:
                    # Fast path: prose up to the next character that could start a hold.
                    match = _PROSE_SPECIAL.search(s, i)
                    end = match.start() if match else len(s)
                    if end > i:
                        self._out.append(s[i:end])
                        i = end
                        continue
                self._pos = base + i
                self._step(s[i])
                i += 1
            if self._retry is not None:
                # A guess failed: its held text is read again before the rest of s.
                work += [(s, i, base), (self._retry[0], 0, self._retry[1])]
                self._retry = None

    def _step(self, c: str) -> None:
        if self._state not in (_PROSE, _OBJECT):
            if not self._held:
                self._held_at = self._pos
            self._held.append(c)
        self._handlers[self._state](c)

    def _opener(self, c: str) -> str:
        """c if it may open a hold ('{', '`' or ':'), else ""."""
        return c if c == ":" or (c in "{`" and self._pos not in self._inert) else ""

    def _prose(self, c: str) -> None:
        opener = self._opener(c)
        if not opener:
            self._out.append(c)
            return
        # After ':' a gap is held: "Here it is: " may lead in to an object.
        self._held, self._held_at, self._state = [c], self._pos, _GAP
        self._open(opener)

    def _gap(self, c: str) -> None:
        if self._opener(c) in ("{", "`"):
            self._open(c)
        elif not c.isspace():
            self._held.pop()
            self._release()
            self._prose(c)

    def _tick(self, c: str) -> None:
        if self._opener(c) != "`":
            self._fail()
            return
        self._ticks += 1
        if self._ticks == 3 and self._fenced:
            del self._held[self._tick_at :]  # the closing fence of a fenced reply is never spoken
            self._fenced = False
            self._release()
        elif self._ticks == 3:
            self._fenced = self._at_start
            self._state = _HEADER

    def _fence(self, c: str) -> None:
        if self._opener(c) == "{":
            self._open(c)
        elif self._state == _FENCE_GAP and not c.isspace():
            self._fail()
        elif self._state == _HEADER and c == "\n" and self._at_start:
            self._held.clear()  # the opening fence of the reply is never spoken: start over
            self._state = _GAP
        elif self._state == _HEADER and c == "\n":
            self._state = _FENCE_GAP

    def _candidate(self, c: str) -> None:
        event = self._scanner.step(c)
        if event == _TEXT_START:
            self._commit()
        elif event == _CLOSED and self._at_start:
            self._commit()  # a reply object without "text": nothing to say, but maybe a command
            self._state = _DONE
        elif event != _OK:
            self._fail()

    def _object(self, c: str) -> None:
        assert self._raw is not None
        self._raw.append(c)
        event = self._scanner.step(c)
        if self._scanner.out:
            self._out += self._scanner.out
            self._scanner.out.clear()
        if event in (_CLOSED, _ERROR):
            self._state = _DONE

    def _open(self, opener: str) -> None:
        """Start a guess at the last held character: an object or a fence."""
        if opener == "{":
            self._state, self._brace_at = _CANDIDATE, len(self._held) - 1
            self._scanner = _JsonScanner()
            self._scanner.step("{")
        elif opener == "`":
            self._state, self._ticks, self._tick_at = _TICKS, 1, len(self._held) - 1

    def _commit(self) -> None:
        """The candidate is the reply object: drop the lead-in held after the last ':'."""
        held = "".join(self._held)
        self._held.clear()
        if held[0] == ":":
            self._out.append(": ")  # the colon's pause, and a space so words don't run together
        self._raw = [held[self._brace_at :]]
        self._state = _OBJECT

    def _release(self) -> None:
        """Speak everything held: it turned out to be plain text."""
        self._out += self._held
        self._held.clear()
        self._state, self._at_start = _PROSE, False

    def _fail(self) -> None:
        """A wrong guess: speak the first held character and read the rest again."""
        held, start = "".join(self._held), self._held_at
        if self._state == _CANDIDATE:
            brace = start + self._brace_at
            self._inert.update(brace + step for step in self._scanner.braces)
        self._inert.update(start + i for i, ch in enumerate(held) if ch == "`" and i)
        self._held.clear()
        self._state, self._at_start = _PROSE, False
        self._out.append(held[0])
        self._retry = (held[1:], start + 1)
