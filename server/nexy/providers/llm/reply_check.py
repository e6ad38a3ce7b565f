"""Checks on a model's reply: role markers, an echo of the question, a reply in the wrong script.

A small model shown a conversation may continue its format ("User: …"), repeat the question, or
slide into another language. :class:`ReplyGuard` streams a reply while holding back only what
could still turn out to be one of those, so none of it is ever spoken; :func:`degenerate` tells
the memory which replies must not become history the model would imitate next time.
"""

from __future__ import annotations

import re

# Chat-template tokens and role labels; also the local model's stop strings.
ROLE_MARKERS = ("User:", "Assistant:", "<|im_start|>", "<|im_end|>", "Пользователь:", "Ассистент:")
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_DECIDING_LETTERS = 4  # letters a reply must have before its script is judged
_AFTER_ECHO = " \t\n.,!?;:-—\"'«»"  # what trails an echoed question before the real answer


def marker_at(text: str) -> int | None:
    """Where the first role marker in ``text`` starts, or None."""
    found = [index for marker in ROLE_MARKERS if (index := text.find(marker)) >= 0]
    return min(found) if found else None


def _partial_marker(text: str) -> int:
    """How many final characters of ``text`` could be the start of a role marker."""
    longest = 0
    for marker in ROLE_MARKERS:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:size]):
                longest = size
                break
    return longest


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _script(text: str) -> str | None:
    """ "cyrillic" or "latin" by which letters are more common; None without letters."""
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if not cyrillic and not latin:
        return None
    return "cyrillic" if cyrillic >= latin else "latin"


def wrong_script(prompt: str, reply: str) -> bool:
    """Whether the reply has letters but none in the script the user wrote in."""
    asked = _script(prompt)
    letters = _CYRILLIC if asked == "cyrillic" else _LATIN
    return asked is not None and _script(reply) is not None and not letters.search(reply)


def is_echo(prompt: str, reply: str) -> bool:
    """Whether the reply is the user's words again, ignoring case and punctuation."""
    said = _words(reply)
    return bool(said) and said == _words(prompt)


def degenerate(prompt: str, reply: str) -> bool:
    """A reply not worth keeping as history: empty, an echo, or in the wrong script."""
    return not reply.strip() or is_echo(prompt, reply) or wrong_script(prompt, reply)


class ReplyGuard:
    """A streamed reply, released only once it cannot turn out to be degenerate.

    ``push`` and ``finish`` return the whole speakable reply so far; it only ever grows. An
    echoed question at the start is dropped, the reply ends before a role marker, and a reply
    in the wrong script (or nothing but an echo) is rejected whole.
    """

    def __init__(self, prompt: str) -> None:
        self._prompt = prompt
        self._asked = _words(prompt)
        self._text = ""
        self._start = 0  # where the answer begins once an echoed question is skipped
        self._script_checked = False
        self._echo_checked = len(self._asked) < 2  # a one-word prompt may be answered in kind
        self.ended = False  # no more text is wanted: a marker was reached or the reply rejected
        self.rejected = False

    def push(self, piece: str) -> str:
        """Add generated text; the speakable reply so far."""
        if self.ended:
            return self._speakable(final=True)
        self._text = (self._text + piece).lstrip()
        cut = marker_at(self._text)
        if cut is not None:
            self._text, self.ended = self._text[:cut], True
        return self._speakable(final=self.ended)

    def finish(self) -> str:
        """The reply is complete: everything speakable, or "" if it was rejected."""
        self.ended = True
        return self._speakable(final=True)

    def _speakable(self, *, final: bool) -> str:
        text = self._text
        if not self._script_checked:
            letters = len(_LATIN.findall(text)) + len(_CYRILLIC.findall(text))
            if letters < _DECIDING_LETTERS and not final:
                return ""
            self._script_checked = True
            if wrong_script(self._prompt, text):
                self.rejected = True
        if not self.rejected and not self._echo_checked and not self._check_echo(final):
            return ""
        if self.rejected:
            self.ended = True
            return ""
        end = len(text) if final else len(text) - _partial_marker(text)
        # Trailing whitespace waits for what follows it: before a marker it is never said.
        return text[self._start : end].lstrip(_AFTER_ECHO if self._start else "").rstrip()

    def _check_echo(self, final: bool) -> bool:
        """Decide whether the reply opens with the question; False while it cannot yet tell."""
        words = list(_WORD.finditer(self._text))
        # The last word may still be growing unless something follows it.
        complete = words if final or (words and words[-1].end() < len(self._text)) else words[:-1]
        said = [match.group().casefold() for match in complete]
        if said != self._asked[: len(said)]:
            self._echo_checked = True  # it diverged: a real answer
            return True
        if len(said) == len(self._asked):
            self._start, self._echo_checked = complete[-1].end(), True
            return True
        if not final:
            return False
        # The reply ended part-way through the question: an echo if it said more than a word.
        self._echo_checked = True
        self.rejected = len(said) >= 2
        return True
