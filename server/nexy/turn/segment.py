"""Sentence segmentation of streamed reply text for text-to-speech.

:class:`SentenceSegmenter` cuts the spoken text into segments that a TTS engine can voice one at a
time: the first as soon as its sentence ends (fast first audio), later ones merged up to a target
length (better prosody). Segments are contiguous slices of the input: joined, they give back
exactly the text pushed. A sentence end is only decided once the characters after it are known
("3." + "14" is a number, "e.g. this" is not an end), so the result does not depend on how the
text was split into pushes.
"""

from __future__ import annotations

import re

_CLOSERS = "\"'»”’)]}」』）›"
# A run of sentence-ending marks with the closing quotes and brackets after it, or a newline.
_CANDIDATE = re.compile(r"[.!?…。！？][.!?…。！？\"'»”’)\]}」』）›]*|\n")
_CJK_MARKS = frozenset("。！？")
_CLAUSE = re.compile(r"[,;:—](?=\s)")
_NON_SPACE = re.compile(r"\S")
_OPENERS = "(\"'«“„[{"
# Tokens that end with '.' without ending the sentence (compared lowercased). "a.m.", "p.m.",
# "т.д." and "др." are left out on purpose: they end a sentence unless lowercase text follows,
# which the general lowercase rule already covers.
_ABBREVIATIONS = frozenset(
    {
        *("e.g.", "i.e.", "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "approx.", "fig."),
        *("jan.", "feb.", "mar.", "apr.", "jun.", "jul.", "aug.", "sep.", "sept.", "oct."),
        *("nov.", "dec.", "т.е.", "т.к.", "т.н.", "напр.", "г.", "гг.", "ул.", "им.", "см."),
        *("стр.", "тыс.", "млн.", "млрд.", "руб."),
    }
)


class SentenceSegmenter:
    """Cuts streamed text into sentence-sized segments for TTS, never altering a character."""

    def __init__(
        self, *, first_max_chars: int = 60, target_chars: int = 120, max_chars: int = 300
    ) -> None:
        self._first_max = first_max_chars
        self._target = target_chars
        self._max = max_chars
        self._reset()

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the segments that are complete now."""
        self._buf += text
        return self._drain(final=False)

    def tentative(self) -> str | None:
        """The first segment's likely text (the whole buffer) while only the characters after
        its sentence end are missing.

        "Done." at the end of the buffer ends the sentence unless a lowercase word, a digit or
        more marks follow; the caller may start speaking it early and check it against the
        segment that is decided later. None when there is no such guess.
        """
        if not self._first or self._ends or not self._waiting:
            return None
        match = _CANDIDATE.match(self._buf, self._pos)
        if match is None or match.group() == "\n" or match.end() > self._first_max:
            return None
        start, end = match.span()
        text = self._buf[:end]
        if self._buf[end:].strip() or not text[:start].strip() or text[start - 1].isdigit():
            return None  # decided by what already follows; nothing before; "3." + "14"
        return self._buf if self._ends_sentence(match.group(), start, "A") else None

    def take_tentative(self) -> list[str]:
        """Emit the tentative first segment now, whitespace after it included ([] if none).

        A caller that knows the cost of waiting (time to first audio) takes the guess; if the
        next characters show the sentence went on ("Mr." + " smith"), the rest simply becomes
        the next segment: the text is unchanged, only the first pause came early.
        """
        if self.tentative() is None:
            return []
        segment = self._buf
        self._reset()  # what follows is judged afresh, as after any cut at a sentence end
        self._first = False
        return [segment]

    def flush(self) -> list[str]:
        """End of stream: return everything that remains, as segments."""
        segments = self._drain(final=True)
        self._reset()
        return segments

    def _reset(self) -> None:
        self._buf = ""  # text not yet emitted
        # Decided sentence ends: (content end, cut, hard). A hard end spans a newline, which no
        # merged segment crosses: a line or paragraph break is a pause of its own.
        self._ends: list[tuple[int, int, bool]] = []
        self._pos = 0  # where the search for sentence ends resumes
        self._waiting = False  # a possible sentence end at _pos awaits the next characters
        self._sentence_at = 0  # where the current sentence starts
        self._first = True
        self._blank = (0, 0)  # a span of the buffer known to be whitespace only

    def _drain(self, final: bool) -> list[str]:
        segments = []
        while self._buf:
            self._find_ends(final)
            cut = self._next_cut(final)
            if final and not cut:
                cut = len(self._buf)
            if not cut:
                break
            segments.append(self._buf[:cut])
            self._blank = (0, 0)
            self._buf = self._buf[cut:]
            if any(stop == cut for _, stop, _ in self._ends):
                ends = self._ends
                self._ends = [(e - cut, stop - cut, hard) for e, stop, hard in ends if stop > cut]
                self._pos -= cut
                self._sentence_at -= cut
            else:
                # Cut inside a sentence: the cut starts a new one, so what follows is judged
                # again from there, as if the text had arrived after the cut.
                self._ends, self._pos, self._sentence_at = [], 0, 0
            self._first = False
        return segments

    def _find_ends(self, final: bool) -> None:
        """Decide the sentence ends in the buffer, from where the last search stopped."""
        self._waiting = False
        while (match := _CANDIDATE.search(self._buf, self._pos)) is not None:
            start, end = match.span()
            newline = match.group() == "\n"
            if newline:
                stop = self._line_end(start, final)
            else:
                stop = self._sentence_end(match.group(), start, end, final)
            if stop is None:
                self._pos, self._waiting = start, True
                return
            if stop < 0:
                self._pos = end
            else:
                hard = newline or "\n" in self._buf[end:stop]
                self._ends.append((end, stop, hard))
                self._pos = self._sentence_at = stop
        self._pos = len(self._buf)

    def _line_end(self, start: int, final: bool) -> int | None:
        """A newline ends a segment unless its line is empty; -1: not an end."""
        if not self._buf[self._sentence_at : start].strip():
            return -1
        return self._space_end(start, final)

    def _sentence_end(self, run: str, start: int, end: int, final: bool) -> int | None:
        """Where the segment ends if the marks at start:end end a sentence; -1: they don't;
        None: the next characters decide."""
        buf = self._buf
        if end == len(buf):
            return end if final else None  # "3." + "14", "?" + "!", "." + '"' are still possible
        cjk = not _CJK_MARKS.isdisjoint(run)
        if not cjk and not buf[end].isspace():
            return -1  # 3.14, main.py, example.com/a.b?c=d
        stop = self._space_end(end, final)
        if stop is None or cjk or stop == len(buf):
            return stop
        return stop if self._ends_sentence(run, start, buf[stop]) else -1

    def _ends_sentence(self, run: str, start: int, following: str) -> bool:
        """Whether marks followed by whitespace and then `following` end the sentence."""
        marks = run.rstrip(_CLOSERS)
        if following.islower() and not marks.strip(".…"):
            return False  # unknown abbreviations and mid-sentence ellipses
        if marks != ".":
            return True
        token_at = start
        while token_at > self._sentence_at and not self._buf[token_at - 1].isspace():
            token_at -= 1
        token = self._buf[token_at:start].lstrip(_OPENERS)
        if token.lower() + "." in _ABBREVIATIONS or (len(token) == 1 and token.isupper()):
            return False  # "Dr. Smith", "J. R. R. Tolkien"
        if token.lower() == "no" and following.isdigit():
            return False  # "No. 5"; but "No. I can't" does end a sentence
        # "1. First": a list number opening the sentence.
        return not (token.isdigit() and not self._buf[self._sentence_at : token_at].strip())

    def _space_end(self, pos: int, final: bool) -> int | None:
        """The end of the whitespace run at pos, or None while it may still grow."""
        blank_from, blank_to = self._blank
        # Skip whitespace already checked, so a long run arriving piecemeal is read once.
        match = _NON_SPACE.search(self._buf, blank_to if blank_from <= pos <= blank_to else pos)
        if match is not None:
            return match.start()
        self._blank = (pos, len(self._buf))
        return len(self._buf) if final else None

    def _blocked(self, limit: int) -> bool:
        """Whether an undecided sentence end could still end a sentence within limit chars."""
        return self._waiting and self._pos < limit

    def _next_cut(self, final: bool) -> int | None:
        """The length of the next segment to emit, or None while the text can't decide it."""
        ends, size = self._ends, len(self._buf)
        first_end = ends[0][0] if ends else None
        if self._first:
            if first_end is not None and first_end <= self._first_max:
                return ends[0][1]
            if self._blocked(self._first_max):
                return None
            if size > self._first_max and (cut := self._clause_cut(first_end, final)) != -1:
                return cut
        elif first_end is not None and first_end <= self._target:
            return self._merged_cut(final)
        if first_end is not None and first_end <= self._max:
            return ends[0][1]
        if first_end is not None or size > self._max:
            return None if self._blocked(self._max) else self._max_cut(final)
        return size if final else None

    def _merged_cut(self, final: bool) -> int | None:
        """Merge whole sentences while the segment stays within the target length."""
        ends, count = self._ends, 1
        while count < len(ends) and not ends[count - 1][2] and ends[count][0] <= self._target:
            count += 1
        if count < len(ends) or ends[count - 1][2]:
            return ends[count - 1][1]  # a line break, or the next sentence would overflow
        if len(self._buf) > self._target and not self._blocked(self._target):
            return ends[count - 1][1]  # so would the sentence still arriving
        return len(self._buf) if final else None

    def _clause_cut(self, first_end: int | None, final: bool) -> int | None:
        """Cut an overlong first sentence at a clause boundary; -1 if there is none yet."""
        within = list(_CLAUSE.finditer(self._buf, 0, self._first_max + 1))
        clause = within[-1] if within else None
        if clause is None:
            # None before the limit: take the first after it, if it precedes any sentence end.
            clause = _CLAUSE.search(self._buf, self._first_max)
            limit = min(self._max, self._pos if first_end is None else first_end)
            if clause is None or clause.start() >= limit:
                return -1
        return self._space_end(clause.end(), final)

    def _max_cut(self, final: bool) -> int | None:
        """Cut an overlong segment at its last whitespace within max_chars, else at max_chars."""
        for i in range(min(self._max, len(self._buf) - 1), 0, -1):
            if self._buf[i].isspace():
                return self._space_end(i, final)
        return self._max
