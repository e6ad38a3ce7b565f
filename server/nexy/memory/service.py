"""Per-device memory over durable storage: one bounded read per turn, merged writes after it.

A turn reads the device's memory once, within a small budget (150 ms by default); a slower or
failing database costs the turn its memory, never its answer. After the turn the exchange and
the facts the analyser found are queued as one :class:`~nexy.storage.ops.UpdateMemory` in the
durable outbox, which carries the change rather than the new state, so writes replayed after an
outage merge instead of overwriting each other.

The service keeps a short-lived view per device: the last read with this process's own writes
applied. Writes not yet known to be in the database are replayed onto every fresh read, so a
fact remembered during an outage is still recalled in the next turn. LLM analysis, when a
capable model is configured, runs in one owned worker with a bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from nexy.components import READY, ComponentStatus, State
from nexy.memory.analyzer import LLMAnalyzer, RuleAnalyzer, is_memory_command
from nexy.memory.facts import clean_fact, context_for, exchange_texts, forget_facts, merge
from nexy.memory.hooks import looks_secret
from nexy.providers.llm.base import MemoryContext
from nexy.storage.database import describe_error
from nexy.storage.ops import UpdateMemory
from nexy.storage.outbox import Outbox
from nexy.storage.records import DeviceMemory, Exchange
from nexy.storage.repository import Repository

log = logging.getLogger(__name__)

MAX_UNFLUSHED = 32  # own writes per device replayed onto reads; bounds memory in long outages
UNFLUSHED_TTL_S = 30.0  # while writes succeed, an older own write is surely in the database


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    """What a turn knows about the device: long-term facts and the recent exchanges."""

    facts: tuple[str, ...] = ()
    recent: tuple[Exchange, ...] = ()


@dataclass(slots=True)
class MemoryStats:
    """Counters for metrics and tests."""

    reads: int = 0
    read_timeouts: int = 0
    read_errors: int = 0
    updates: int = 0
    analyses_failed: int = 0  # the model failed: the rule facts were used instead
    analyses_dropped: int = 0  # the analysis queue was full: the rule facts were used instead


@dataclass(slots=True)
class _Device:
    facts: list[str] = field(default_factory=list)
    recent: list[Exchange] = field(default_factory=list)
    loaded: float | None = None  # monotonic time of the last successful read
    unflushed: list[tuple[float, UpdateMemory]] = field(default_factory=list)
    forgot: int = 0  # the service's forget counter when this device last forgot something


@dataclass(frozen=True, slots=True)
class _Job:
    hardware_id: str
    prompt: str
    reply: str
    fallback: tuple[str, ...]  # the rule facts, used when the model fails
    forgets: int  # the forget counter when queued: a later forget cancels these facts


class MemoryService:
    """Durable per-device memory: implements ``MemoryHooks`` and the component lifecycle."""

    def __init__(
        self,
        repository: Repository,
        outbox: Outbox,
        *,
        read_budget_s: float = 0.15,
        max_facts: int = 50,
        max_recent: int = 6,
        rule_analyzer: RuleAnalyzer | None = None,
        llm_analyzer: LLMAnalyzer | None = None,
        cache_ttl_s: float = 5.0,
        max_devices: int = 10_000,
        analysis_queue: int = 64,
        close_timeout_s: float = 5.0,
        max_context_chars: int = 2000,
    ) -> None:
        if read_budget_s <= 0 or max_facts < 1 or max_recent < 0 or max_devices < 1:
            raise ValueError("need read_budget_s > 0, max_facts >= 1, max_recent >= 0")
        self._store, self._outbox = repository, outbox
        self._budget, self._ttl, self._close_timeout = read_budget_s, cache_ttl_s, close_timeout_s
        self._max_facts, self._max_recent, self._max_devices = max_facts, max_recent, max_devices
        self._context_chars = max_context_chars
        self._rules = rule_analyzer or RuleAnalyzer()
        self._llm = llm_analyzer
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        self._dirty: set[str] = set()  # devices with unflushed writes
        self._forgets = 0
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(analysis_queue)
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: str | None = None  # the last read's failure, until one succeeds
        self.stats = MemoryStats()

    async def start(self) -> None:
        """Start the analysis worker when an LLM analyser is configured."""
        self._closing = False
        if self._llm is not None and self._worker is None:
            self._worker = asyncio.create_task(self._analyse_forever(), name="memory-analysis")

    def status(self) -> ComponentStatus:
        """READY; DEGRADED while reads fail (turns then run without memory)."""
        if self._failure is not None:
            return ComponentStatus(State.DEGRADED, f"memory reads failing: {self._failure}")
        return READY

    async def drain(self) -> None:
        """Wait until every deferred analysis has finished (tests and settling)."""
        await self._jobs.join()

    # The registry calls close() bare; the timeout bounds the drain, not an await to wrap.
    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Finish queued analyses without the model (rule facts), then stop the worker."""
        worker, self._worker = self._worker, None
        self._closing = True  # the model may already be closed: fall back to the rule facts
        if worker is not None:
            try:
                async with asyncio.timeout(self._close_timeout if timeout is None else timeout):
                    await self._jobs.join()
            except TimeoutError:
                log.warning("memory closed with %d analyses unfinished", self._jobs.qsize())
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        self._devices.clear()
        self._dirty.clear()

    async def read(self, hardware_id: str) -> MemorySnapshot:
        """The device's memory, read once within the budget (empty if the read fails)."""
        self._settle()
        self.stats.reads += 1
        device = self._device(hardware_id)
        loaded = await self._load(hardware_id)
        now = time.monotonic()
        if loaded is not None or not self._fresh(device, now):
            # After a failed read only this process's own writes are known.
            base = loaded if loaded is not None else DeviceMemory()
            device.facts, device.recent = base.facts, base.recent
            device.loaded = now if loaded is not None else device.loaded
            # Own writes the database may not have yet: replaying one it has changes nothing.
            for _, op in device.unflushed:
                self._apply(device, op)
        return MemorySnapshot(tuple(device.facts), tuple(device.recent))

    async def read_context(self, hardware_id: str) -> MemoryContext:
        """``context(await read(hardware_id))``: what the turn's model is told (empty if none)."""
        return self.context(await self.read(hardware_id))

    def context(self, snapshot: MemorySnapshot) -> MemoryContext:
        """The facts and recent exchanges the LLM gets as data, within the context budget."""
        return context_for(snapshot.facts, snapshot.recent, self._context_chars)

    def discard(self, hardware_id: str) -> None:
        """Drop the device's cached view and queued-write replay (after deleting its data)."""
        self._devices.pop(hardware_id, None)
        self._dirty.discard(hardware_id)

    async def after_turn(self, hardware_id: str, prompt: str, reply: str, outcome: str) -> None:
        """Queue the turn's memory update durably: the exchange as said, plus learned facts."""
        said = exchange_texts(prompt, reply, interrupted=outcome == "interrupted")
        exchange = Exchange(*said) if said is not None else None
        facts = tuple(self._rules.facts(prompt))
        # Memory commands were carried out by the intents; analysing them would only echo them.
        job = _Job(hardware_id, prompt, reply, facts, self._forgets)
        if not is_memory_command(prompt) and self._defer(job):
            facts = ()  # the model's facts follow from the worker
        if exchange is not None or facts:
            await self._record(self._update(hardware_id, facts=facts, exchange=exchange))

    async def remember(self, hardware_id: str, fact: str) -> None:
        """Keep a fact; a repeat becomes the newest, a secret or an empty fact is ignored."""
        cleaned = clean_fact(fact)
        if cleaned is not None:
            await self._record(self._update(hardware_id, facts=(cleaned,)))

    async def recall(self, hardware_id: str) -> list[str]:
        """This device's facts, oldest first, including writes still queued."""
        return list((await self._current(hardware_id)).facts)

    async def forget(self, hardware_id: str, query: str) -> int:
        """Remove facts containing the query's words ("" or "everything"/"всё" = all); count."""
        if looks_secret(query):
            return 0  # no stored fact can match a secret, and the query must not reach the disk
        removed = forget_facts((await self._current(hardware_id)).facts, query)[1]
        await self._record(self._update(hardware_id, forget=query))
        self._forgets += 1
        self._device(hardware_id).forgot = self._forgets
        return removed

    def _update(
        self,
        hardware_id: str,
        *,
        facts: tuple[str, ...] = (),
        forget: str | None = None,
        exchange: Exchange | None = None,
    ) -> UpdateMemory:
        return UpdateMemory(hardware_id, facts, forget, exchange, self._max_facts, self._max_recent)

    async def _record(self, op: UpdateMemory) -> None:
        """Queue the write durably, then show it in this process's view at once."""
        await self._outbox.put(op)
        self.stats.updates += 1
        device = self._device(op.hardware_id)
        self._apply(device, op)
        device.unflushed.append((time.monotonic(), op))
        del device.unflushed[:-MAX_UNFLUSHED]
        self._dirty.add(op.hardware_id)

    def _apply(self, device: _Device, op: UpdateMemory) -> None:
        device.facts, device.recent, _ = merge(
            device.facts,
            device.recent,
            add=op.add_facts,
            forget=op.forget,
            exchange=op.exchange,
            max_facts=op.max_facts,
            max_recent=op.max_recent,
        )

    async def _current(self, hardware_id: str) -> MemorySnapshot:
        """The cached view while fresh (so recall in the same turn reads nothing), else a read."""
        device = self._devices.get(hardware_id)
        if device is not None and self._fresh(device, time.monotonic()):
            return MemorySnapshot(tuple(device.facts), tuple(device.recent))
        return await self.read(hardware_id)

    async def _load(self, hardware_id: str) -> DeviceMemory | None:
        """One ``load_memory`` within the budget; None on timeout or error."""
        try:
            async with asyncio.timeout(self._budget):
                memory = await self._store.load_memory(hardware_id)
        except TimeoutError:
            self.stats.read_timeouts += 1
            self._read_failed(f"slower than {self._budget * 1000:.0f} ms")
            return None
        except Exception as exc:  # a failed read only costs this turn its memory
            self.stats.read_errors += 1
            self._read_failed(describe_error(exc))
            return None
        if self._failure is not None:
            log.info("memory reads recovered")
            self._failure = None
        return memory

    def _read_failed(self, reason: str) -> None:
        if self._failure is None:  # one warning per outage, not one per turn
            log.warning("memory read failed, turns proceed without memory: %s", reason)
        self._failure = reason

    def _settle(self) -> None:
        """Stop replaying own writes the database surely has."""
        if not self._dirty:
            return
        flushed = self._outbox.pending() == 0  # FIFO: everything queued so far is applied
        healthy = self._outbox.status().state is State.READY
        if not (flushed or healthy):
            return  # an outage: every own write may still be waiting
        cutoff = time.monotonic() - UNFLUSHED_TTL_S
        for hardware_id in list(self._dirty):
            device = self._devices.get(hardware_id)
            if device is not None:
                device.unflushed = [] if flushed else [w for w in device.unflushed if w[0] > cutoff]
            if device is None or not device.unflushed:
                self._dirty.discard(hardware_id)

    def _device(self, hardware_id: str) -> _Device:
        device = self._devices.get(hardware_id)
        if device is None:
            device = self._devices[hardware_id] = _Device()
            while len(self._devices) > self._max_devices:
                evicted, _ = self._devices.popitem(last=False)
                self._dirty.discard(evicted)
        self._devices.move_to_end(hardware_id)  # recently active devices are evicted last
        return device

    def _fresh(self, device: _Device, now: float) -> bool:
        return device.loaded is not None and now - device.loaded <= self._ttl

    def _defer(self, job: _Job) -> bool:
        """Hand the exchange to the LLM worker; False when there is none or it is full."""
        if self._llm is None or self._worker is None or self._closing:
            return False
        try:
            self._jobs.put_nowait(job)
        except asyncio.QueueFull:
            self.stats.analyses_dropped += 1
            return False
        return True

    async def _analyse_forever(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await self._analyse(job)
            except Exception as exc:  # one failed analysis must not stop the worker
                log.error("memory analysis write failed: %s", type(exc).__name__)
            finally:
                self._jobs.task_done()

    async def _analyse(self, job: _Job) -> None:
        facts: list[str] | None = None
        if self._llm is not None and not self._closing:
            facts = await self._llm.analyse(job.prompt, job.reply, job.hardware_id)
            if facts is None:
                self.stats.analyses_failed += 1
        chosen = tuple(job.fallback if facts is None else facts)
        device = self._devices.get(job.hardware_id)
        if device is not None and device.forgot > job.forgets:
            return  # the user asked to forget after this turn: learning from it would undo that
        if chosen:
            await self._record(self._update(job.hardware_id, facts=chosen))
