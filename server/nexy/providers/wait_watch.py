"""Time limits on a stream's waits, without a timer per item.

``asyncio.timeout`` around each ``await`` of a stream schedules and cancels one timer per item.
A turn's audio passes as 50 ms pieces, so hundreds of streams put thousands of cancelled timers
a second, each due seconds later, into the event loop's heap, and every timer operation pays
for the heap's size. ``WaitWatch`` keeps one timer per stream: it is armed for the current
wait's deadline and, when it fires, either ends that wait (the deadline really passed) or moves
itself to the deadline of the wait now in progress. A stream's deadlines rarely move earlier
between waits (its limits mostly shrink only by the time it already waited); when one does,
the timer is moved to it, so the watch is never late.
"""

from __future__ import annotations

import asyncio


class WaitWatch:
    """Cancels the owning task when a wait between ``begin`` and ``end`` outlasts its limit.

    Use from that task only::

        watch.begin(limit)
        try:
            item = await source()
        except asyncio.CancelledError:
            if watch.expired():
                ...  # the limit passed: a timeout of ours, not a cancellation
            raise
        finally:
            watch.end()
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("WaitWatch needs a running task")
        self._task = task
        self._due: float | None = None  # the current wait's deadline; None between waits
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def begin(self, limit: float) -> None:
        self._due = due = self._loop.time() + max(limit, 0.0)
        if self._timer is not None and self._timer.when() > due:
            self._timer.cancel()  # this wait ends before the one the timer was set for
            self._timer = None
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._check)

    def end(self) -> None:
        self._due = None

    def expired(self) -> bool:
        """Whether a cancellation came from this watch; if so, it is taken back (uncancel)."""
        if not self._fired:
            return False
        self._fired = False
        return self._task.uncancel() == 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._due is None:
            return  # between waits: the next begin() arms it again
        if self._loop.time() >= self._due:
            self._fired = True
            self._task.cancel()
        else:
            self._timer = self._loop.call_at(self._due, self._check)
