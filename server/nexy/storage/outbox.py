"""The durable write path: queue a write on local disk, apply it to the database later.

``put`` returns once the write is in the local spool file, so a turn never waits for, or fails
because of, the database; puts that arrive together share one disk write (``appender``). One
flusher task applies the queued writes in order and deletes them only after the database
accepted them; while the database fails it backs off exponentially and logs one warning per
outage. Writes still queued at shutdown stay on disk and are applied after the next start. A
replayed turn or usage write carries its first attempt's id, so the database stores it once.

The flusher reads up to ``BATCH`` writes and, when the target can (``BatchTarget``), applies
them in ONE transaction and deletes them from the spool with one statement: a session, a commit
and a spool commit per batch instead of per write. If the batch fails, the transaction is rolled
back, so nothing of it was applied (a memory update cannot be merged twice), and that batch's
writes are applied one at a time, which finds the write at fault.

A write that fails is judged by ``nexy.storage.triage``: one the database refuses (or that
keeps failing while the database answers) is moved to the spool's ``dead`` table with the
driver's message and the queue moves on; an outage is waited out, the same write retried with
backoff for as long as it takes.

Dead rows are never retried automatically; ``stats()`` counts them for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from uuid import uuid4

from nexy.components import READY, ComponentStatus, State
from nexy.storage.appender import GroupAppender
from nexy.storage.database import describe_error
from nexy.storage.ops import (
    AddUsage,
    BatchTarget,
    WriteOp,
    WriteTarget,
    apply_op,
    decode_op,
    encode_op,
)
from nexy.storage.spool import NewRow, QueuedRow, Spool
from nexy.storage.triage import Probe, Triage
from nexy.usage import UsageRecord

log = logging.getLogger(__name__)

BATCH = 64  # queued writes read (and applied together) per round: memory stays small
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The queue's counts, for metrics."""

    pending: int  # writes waiting to be applied
    dead: int  # writes set aside in the dead table (kept across restarts)
    refused: int  # writes set aside since this process started


class Outbox:
    """Durable, ordered writes to a repository through a local spool file."""

    def __init__(
        self,
        repository: WriteTarget,
        path: Path,
        *,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        close_timeout: float = 5.0,
        probe: Probe | None = None,
        max_attempts: int = 20,
    ) -> None:
        if not 0 < retry_initial <= retry_max:
            raise ValueError("need 0 < retry_initial <= retry_max")
        self._target = repository
        self._batch_target = repository if isinstance(repository, BatchTarget) else None
        self._path = Path(path)
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._close_timeout = close_timeout
        self._triage = Triage(probe, max_attempts)
        self._dead = 0
        self._refused = 0
        self._executor: ThreadPoolExecutor | None = None
        self._spool: Spool | None = None
        self._appender: GroupAppender | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = 0
        self._failure: str | None = None  # set for the length of an outage
        # Set while the local file itself fails: then finished turns cannot be kept at all,
        # which (unlike a database outage) makes this replica unfit to serve.
        self._spool_failure: str | None = None
        self._generation = 0  # bumped by discard(), so the flusher drops a stale batch
        self._wakeup = asyncio.Event()  # a write was queued
        self._nudge = asyncio.Event()  # close() asks for one retry now
        self._progress = asyncio.Event()  # a write left the queue
        self._apply_lock = asyncio.Lock()
        self._closed = False

    async def start(self) -> None:
        """Open the spool (resuming what a previous run left) and start the flusher."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexy-outbox")
        try:
            self._spool = await self._call(Spool.open, self._path)
            self._pending = await self._call(self._spool.count)
            self._dead = await self._call(self._spool.dead_count)
        except BaseException:
            if self._spool is not None:
                self._spool.close()
                self._spool = None
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        # Puts go through the appender: it exists exactly while puts are accepted.
        self._appender = GroupAppender(functools.partial(self._append, self._spool), self._appended)
        if self._pending:
            log.info("resuming %d queued storage writes from %s", self._pending, self._path)
        self._closed = False
        self._task = asyncio.create_task(self._flush_forever(), name="nexy-outbox-flusher")
        self._wakeup.set()

    def status(self) -> ComponentStatus:
        """READY; DEGRADED with the number of waiting writes while the database fails."""
        if self._task is None:
            return ComponentStatus(State.DOWN, "closed" if self._closed else "not started")
        if self._spool_failure is not None:
            return ComponentStatus(State.DOWN, f"local write queue failing ({self._spool_failure})")
        if self._failure is not None:
            return ComponentStatus(
                State.DEGRADED, f"{self._pending} writes waiting ({self._failure})"
            )
        return READY

    def pending(self) -> int:
        """How many writes are queued and not yet applied."""
        return self._pending

    def stats(self) -> OutboxStats:
        """Pending, set-aside and refused-since-start counts (read at scrape time)."""
        return OutboxStats(self._pending, self._dead, self._refused)

    async def put(self, op: WriteOp) -> None:
        """Queue a write; returns once it is on local disk."""
        appender = self._appender
        if appender is None:
            raise RuntimeError("the outbox is not running")
        body = encode_op(op)  # a write that cannot be serialised fails here, in the caller
        written = appender.add((uuid4().hex, op.hardware_id, body))
        # Once added the write reaches the disk even if the caller is cancelled, so the count
        # follows the append, not the caller.
        await asyncio.shield(written)

    def _append(self, spool: Spool, rows: list[NewRow]) -> asyncio.Future[None]:
        return self._submit(spool.append, rows)

    def _appended(self, count: int, error: BaseException | None) -> None:
        if error is not None:
            self._spool_trouble(error)
            return
        self._spool_failure = None
        self._pending += count
        self._wakeup.set()

    def _spool_trouble(self, exc: BaseException) -> None:
        if self._spool_failure is None:  # one line per episode, not per write
            log.error("outbox spool %s failed: %s", self._path, describe_error(exc))
        self._spool_failure = describe_error(exc)

    async def record(self, usage: UsageRecord) -> None:
        """Queue a usage record (the ``UsageSink`` seam)."""
        await self.put(AddUsage(usage))

    async def discard(self, hardware_id: str) -> int:
        """Drop the device's queued (and set-aside) writes, e.g. before deleting its data.

        Returns how many queued writes were dropped.
        """
        spool = self._require()
        async with self._apply_lock:  # not while one of them is being applied
            dropped, dead = await self._call(spool.discard, hardware_id)
            self._generation += 1
        self._pending = max(0, self._pending - dropped)
        self._dead = max(0, self._dead - dead)
        self._progress.set()
        return dropped

    # The registry calls close() bare; the timeout bounds the flush, not an await to wrap.
    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Flush for at most ``timeout`` s (default close_timeout); the rest stays on disk."""
        task, spool, executor = self._task, self._spool, self._executor
        if task is None or spool is None or executor is None:
            return
        timeout = self._close_timeout if timeout is None else timeout
        self._nudge.set()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._progress.clear()
                    if self._pending == 0 or task.done():
                        break
                    await self._progress.wait()
        except TimeoutError:
            pass
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._task = None
        appender, self._appender, self._spool = self._appender, None, None
        if appender is not None:  # no new puts; the ones already made still reach the disk
            await appender.idle()
        if self._pending:
            log.warning(
                "%d storage writes left in %s; they are applied after the next start",
                self._pending,
                self._path,
            )
        self._closed = True
        await self._call(spool.close, executor=executor)
        self._executor = None
        executor.shutdown(wait=True)

    async def _flush_forever(self) -> None:
        delay = self._retry_initial
        while True:
            self._wakeup.clear()
            try:
                drained = await self._drain()
            except Exception as exc:  # the spool itself failed: keep the task alive, retry
                self._spool_trouble(exc)
                drained = False
            else:
                self._spool_failure = None
            if drained:
                delay = self._retry_initial
                await self._wakeup.wait()
                continue
            await self._backoff(delay)
            delay = min(delay * 2, self._retry_max)

    async def _drain(self) -> bool:
        """Apply queued writes in order until none is left (True) or one fails (False)."""
        spool = self._require()
        while True:
            generation = self._generation
            rows = await self._call(spool.head, BATCH)
            if not rows:
                self._pending = 0  # the file is the truth; the counter only mirrors it
                return True
            async with self._apply_lock:  # discard() waits for the whole batch
                if generation != self._generation:
                    continue  # discard() changed the queue under this batch: read it again
                if await self._apply_together(spool, rows):
                    continue
            # Nothing of the batch was applied: one at a time now, to find the write at fault.
            for row in rows:
                async with self._apply_lock:
                    if generation != self._generation:
                        break
                    if not await self._apply(spool, row):
                        return False

    async def _apply_together(self, spool: Spool, rows: list[QueuedRow]) -> bool:
        """All rows in one transaction (True), or none of them (False)."""
        if self._batch_target is None or len(rows) < 2:
            return False
        try:
            batch = [(decode_op(body), op_id) for _seq, op_id, body in rows]
            await self._batch_target.apply_batch(batch)
        except Exception as exc:  # rolled back: the one-at-a-time path judges each write
            reason = describe_error(exc)
            log.debug("a batch of %d writes failed, applying one at a time: %s", len(rows), reason)
            return False
        await self._call(spool.remove, [seq for seq, _, _ in rows])
        self._left_queue(len(rows))
        return True

    async def _apply(self, spool: Spool, row: QueuedRow) -> bool:
        seq, op_id, body = row
        try:
            await apply_op(self._target, decode_op(body), op_id)
        except Exception as exc:
            if not await self._triage.set_aside(seq, exc):
                self._outage(exc)
                return False
            # The driver's message only: the statement's parameters hold what users said.
            reason = describe_error(exc)
            log.error("storage refused queued write %d, moved aside: %s", seq, reason)
            await self._call(spool.bury, seq, reason)
            self._dead += 1
            self._refused += 1
        else:
            await self._call(spool.remove, [seq])
        self._left_queue(1)
        return True

    def _left_queue(self, count: int) -> None:
        """``count`` writes were applied or set aside."""
        self._triage.reset()
        self._pending = max(0, self._pending - count)
        self._progress.set()
        if self._failure is not None:
            log.info("storage writes recovered; %d still queued", self._pending)
            self._failure = None

    def _outage(self, exc: BaseException) -> None:
        if self._failure is None:  # one warning per outage, not per retry
            log.warning(
                "storage writes failing, queueing on disk in %s: %s",
                self._path,
                describe_error(exc),
            )
        self._failure = describe_error(exc)

    async def _backoff(self, delay: float) -> None:
        # Jitter keeps replicas from retrying in lockstep when the database comes back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._nudge.wait(), delay * random.uniform(0.5, 1.0))
        self._nudge.clear()

    def _require(self) -> Spool:
        if self._spool is None:
            raise RuntimeError("the outbox is not running")
        return self._spool

    def _submit(
        self, func: Callable[..., T], *args: object, executor: ThreadPoolExecutor | None = None
    ) -> asyncio.Future[T]:
        pool = executor or self._executor
        if pool is None:
            raise RuntimeError("the outbox is not running")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(pool, functools.partial(func, *args))

    async def _call(
        self, func: Callable[..., T], *args: object, executor: ThreadPoolExecutor | None = None
    ) -> T:
        return await self._submit(func, *args, executor=executor)
