"""Group commit: the puts that arrive while one append is being written share the next one.

Every ``put`` waits until its write is on disk, and with ``synchronous=FULL`` the sync, not the
row, is what costs. So at most one append is in flight; rows that arrive meanwhile wait in a
list and go to disk together (one worker-thread call, one transaction) as soon as it is done.
Each caller's future resolves after the commit that holds its row, or fails with that commit's
error. Rows reach the file in the order ``add`` was called. No task runs this: each finished
append starts the next, so nothing is left running when nobody writes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from nexy.storage.spool import NewRow

Submit = Callable[[list[NewRow]], asyncio.Future[None]]  # starts an append in the worker
Written = Callable[[int, BaseException | None], None]  # how many rows, and the error if any
_Group = list[tuple[NewRow, asyncio.Future[None]]]


class GroupAppender:
    """Batches concurrent appends into one disk write each; one write in flight at a time."""

    def __init__(self, submit: Submit, written: Written) -> None:
        self._submit = submit
        self._written = written
        self._waiting: _Group = []
        self._writing: asyncio.Future[None] | None = None

    def add(self, row: NewRow) -> asyncio.Future[None]:
        """Queue a row for the next append; the future resolves once the row is on disk."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._writing is None:
            self._start_next()
        return done

    async def idle(self) -> None:
        """Wait until every row added so far is on disk (or has failed)."""
        while self._writing is not None:
            # The chain's own callback runs first, so the next append is already in flight.
            await asyncio.wait([self._writing])

    def _start_next(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                writing = self._submit([row for row, _ in group])
            except Exception as exc:  # e.g. the worker is gone: these rows fail, not the chain
                self._settle(group, exc)
                continue
            self._writing = writing
            writing.add_done_callback(functools.partial(self._finished, group))
            return
        self._writing = None

    def _finished(self, group: _Group, writing: asyncio.Future[None]) -> None:
        if writing.cancelled():
            error: BaseException | None = RuntimeError("the append was cancelled")
        else:
            error = writing.exception()
        self._settle(group, error)
        self._start_next()

    def _settle(self, group: _Group, error: BaseException | None) -> None:
        for _, done in group:
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
                # The outbox reports the failure once per group; a caller who stopped waiting
                # must not also leave a "never retrieved" complaint behind.
                done.exception()
        self._written(len(group), error)
