"""A bounded hand-over of items from one blocking worker thread to one asyncio consumer.

The embedded engines (eSpeak NG, Piper, llama.cpp) produce output on a worker thread of their
own while the consumer is a coroutine on the event loop. :class:`Handoff` is the channel
between them, with four guarantees:

* **Bounded.** At most ``capacity`` items wait for the consumer: a slow reader makes the worker
  wait instead of growing memory.
* **Abortable.** :meth:`Handoff.cancel` (barge-in, ``close()``) wakes a worker waiting for room
  and makes every later :meth:`Handoff.deliver` answer False, so the engine stops at its next
  chunk and the worker thread moves on to the next request.
* **Not pinned by a vanished reader.** A worker that waits ``stall_seconds`` for room gives up
  and cancels: a consumer that stopped reading without closing its stream must not hold a
  worker shared by every session.
* **Always ended.** :meth:`Handoff.finish` posts an :class:`End` marker without waiting for
  room, so the consumer learns the outcome even when the buffer is full or the job aborted.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class End:
    """The last item of a hand-off; ``error`` is empty when the worker finished normally."""

    error: str = ""


class Handoff(Generic[T]):
    """One job's channel: the worker calls deliver()/finish(), the consumer get()/cancel().

    Built on the consumer's running event loop. Meant for exactly one worker thread and one
    consumer coroutine; with two workers the items would interleave.

    Why the asyncio queue can never overflow, so ``put_nowait`` never raises ``QueueFull``:
    every data item is posted only after :meth:`deliver` took a slot from ``_slots`` *and* then
    found the cancel flag clear, and :meth:`get` gives a slot back only once that item has left
    the queue. The one other source of slots, :meth:`cancel`, sets the flag *before* it
    releases, so a worker that takes such a slot always sees the flag and posts nothing. Data
    items in the queue therefore never exceed ``capacity``; the end marker is posted at most
    once, hence ``maxsize = capacity + 1``. The maxsize is redundant by construction: it states
    the bound where the queue is made, and turns a broken invariant into an error rather than
    silent growth.
    """

    def __init__(self, capacity: int, stall_seconds: float) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if stall_seconds <= 0:
            raise ValueError(f"stall_seconds must be positive, got {stall_seconds}")
        self.capacity = capacity
        self.stall_seconds = stall_seconds
        self._loop = asyncio.get_running_loop()
        # Fed only through call_soon_threadsafe: asyncio queues are not thread-safe.
        self._queue: asyncio.Queue[T | End] = asyncio.Queue(maxsize=capacity + 1)
        # Free buffer slots. The worker waits here, on a thread primitive, because it cannot
        # await the queue's own put() from outside the loop.
        self._slots = threading.Semaphore(capacity)
        self._cancelled = threading.Event()
        self._finished = False  # touched only by the worker thread

    @property
    def cancelled(self) -> bool:
        """Whether the job should stop: cancelled, stalled, or its event loop is closed."""
        return self._cancelled.is_set()

    def deliver(self, item: T) -> bool:
        """Worker side: wait for room and hand ``item`` over; False means stop the job."""
        if self._cancelled.is_set():
            return False  # without this a second call after a cancel would wait out the stall
        if not self._slots.acquire(timeout=self.stall_seconds):
            self._cancelled.set()  # a consumer that stopped reading must not pin the worker
        # Checked after acquiring: a slot released by cancel() must never carry an item.
        if self._cancelled.is_set():
            return False
        return self._post(item)

    def finish(self, error: str = "") -> None:
        """Worker side: end the hand-off; the marker never waits for room. Later calls no-op."""
        if self._finished:
            return  # a second marker would break the queue's capacity + 1 bound
        self._finished = True
        self._post(End(error))

    async def get(self) -> T | End:
        """Consumer side: the next item, or the :class:`End` marker (then stop calling get)."""
        item = await self._queue.get()
        if not isinstance(item, End):
            self._slots.release()  # the item has left the buffer: the worker may add one more
        return item

    def cancel(self) -> None:
        """Consumer side: stop the worker at its next deliver() (idempotent)."""
        self._cancelled.set()  # before the release: see the class docstring
        self._slots.release()  # wakes a worker waiting for room so it sees the flag now

    def _post(self, item: T | End) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the consumer's event loop is closed: nobody is listening
            self._cancelled.set()
            return False
        return True
