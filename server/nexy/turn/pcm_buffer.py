"""An utterance's engine audio waiting for the speaker: bounded, and handed over in bulk.

The engine appends its raw PCM pieces (often 50 ms each) as they come; the speaker takes
everything that is waiting at once and converts it in one go. The speaker says how much it
wants before it is woken (the formatter knows how much makes its next wire chunk), or is woken
at the end. Audio synthesized ahead of the speaker is therefore converted in one call when its
turn comes: resampling and levelling cost several times more per second of audio on 50 ms
pieces than on larger blocks.
"""

from __future__ import annotations

import asyncio


class PcmBuffer:
    """Raw PCM from one writer (the engine) to one reader (the speaker)."""

    def __init__(self, bound_bytes: int) -> None:
        if bound_bytes <= 0:
            raise ValueError("bound_bytes must be positive")
        self._bound = bound_bytes  # the writer waits while this much is waiting
        self._wanted = 1  # the waiting reader is woken once this much is waiting
        self._pieces: list[bytes] = []
        self._size = 0
        self._ended = False
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None

    async def put(self, pcm: bytes) -> None:
        """Append a piece; waits while the buffer holds its bound (the reader is behind)."""
        while self._size >= self._bound:
            self._writer = asyncio.get_running_loop().create_future()
            try:
                await self._writer
            finally:
                self._writer = None
        if pcm:
            self._pieces.append(pcm)
            self._size += len(pcm)
            self._wake_reader()

    def end(self) -> None:
        """No more audio will come (finished, failed or cancelled)."""
        self._ended = True
        self._wake_reader()

    async def take(self, wanted: int = 1) -> tuple[bytes, bool]:
        """All waiting audio once at least ``wanted`` bytes wait, and whether the utterance has
        ended (then whatever is left, perhaps nothing: no more will come)."""
        self._wanted = max(wanted, 1)
        while not self._worth_taking():
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        pcm = self._pieces[0] if len(self._pieces) == 1 else b"".join(self._pieces)
        self._pieces.clear()
        self._size = 0
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)
        return pcm, self._ended

    def _worth_taking(self) -> bool:
        return self._ended or self._size >= self._wanted

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done() and self._worth_taking():
            reader.set_result(None)
