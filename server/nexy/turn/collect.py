"""COLLECT buffering: the client's interim transcripts, kept until the COMMIT arrives.

Bounded in number and in bytes (oldest evicted) and in age (TTL), so a client that never
commits cannot grow server memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from nexy.providers.llm.base import Image


@dataclass(slots=True)
class CollectBuffer:
    text: str = ""
    last_seq: int = -1
    screenshot: Image | None = None
    updated: float = 0.0

    @property
    def size(self) -> int:
        return len(self.text) + (len(self.screenshot.data) if self.screenshot else 0)


class CollectStore:
    """Per ``(hardware_id, session_id)`` interim state, newest wins."""

    def __init__(
        self,
        ttl_seconds: float,
        max_buffers: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_buffers
        self._max_bytes = max_bytes
        self._clock = clock
        self._bytes = 0
        self._buffers: OrderedDict[tuple[str, str], CollectBuffer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buffers)

    def update(
        self,
        key: tuple[str, str],
        seq: int,
        text: str,
        screenshot: Image | None,
    ) -> None:
        """Record one COLLECT; a chunk whose seq is not newer than the last one is ignored."""
        now = self._clock()
        self._expire(now)
        buffer = self._pop(key) or CollectBuffer()
        if seq > buffer.last_seq:
            buffer.last_seq = seq
            if text:
                buffer.text = text
        if screenshot is not None:
            buffer.screenshot = screenshot
        buffer.updated = now
        self._buffers[key] = buffer
        self._bytes += buffer.size
        while len(self._buffers) > self._max or self._bytes > self._max_bytes:
            self._pop(next(iter(self._buffers)))

    def take(self, key: tuple[str, str]) -> CollectBuffer | None:
        """Remove and return the buffer for a COMMIT (None when absent or expired)."""
        self._expire(self._clock())
        return self._pop(key)

    def _pop(self, key: tuple[str, str]) -> CollectBuffer | None:
        buffer = self._buffers.pop(key, None)
        if buffer is not None:
            self._bytes -= buffer.size
        return buffer

    def _expire(self, now: float) -> None:
        # Buffers are kept in update order, so the expired ones are at the front.
        while self._buffers:
            key, oldest = next(iter(self._buffers.items()))
            if now - oldest.updated <= self._ttl:
                break
            self._pop(key)


def merge_prompt(committed: str, collected: str) -> str:
    """Combine the COMMIT prompt with the last COLLECT transcript without repeating words.

    Snapshot growth (one starts with the other) keeps the longer; otherwise the committed words
    that the transcript already ends with are not repeated.
    """
    committed, collected = committed.strip(), collected.strip()
    if not committed or not collected:
        return committed or collected
    if committed.startswith(collected):
        return committed
    if collected.startswith(committed):
        return collected
    head, tail = collected.split(), committed.split()
    overlap = _longest_word_overlap(head, tail)
    return " ".join(head + tail[overlap:])


def _longest_word_overlap(head: list[str], tail: list[str]) -> int:
    """How many leading words of ``tail`` the word list ``head`` already ends with."""
    for size in range(min(len(head), len(tail)), 0, -1):
        if head[-size:] == tail[:size]:
            return size
    return 0
