"""Memory over storage on both backends: the merge op, reads within budget, outages, forget.

Each test that takes ``repository`` runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nexy.components import State
from nexy.memory.analyzer import LLMAnalyzer
from nexy.memory.facts import WITHHELD, add_exchange, mentions, merge
from nexy.memory.hooks import InProcessMemory
from nexy.memory.service import MemoryService, MemorySnapshot
from nexy.providers.llm.base import Exchange as LLMExchange
from nexy.providers.llm.base import LLMRequest, MemoryContext
from nexy.storage import DeviceMemory, Exchange, Outbox, Repository, UpdateMemory
from nexy.storage.ops import WriteOp, decode_op, encode_op
from nexy.turn.intents import IntentMatcher
from tests.waiting import eventually

FAST = {"retry_initial": 0.01, "retry_max": 0.04}
T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
HW = "hw-mem"


class Switchable:
    """The real repository behind switches: down (every call fails), hang (reads never end)."""

    def __init__(self, inner: Repository) -> None:
        self.inner = inner
        self.down = False
        self.hang = False
        self.loads = 0
        self.lose_next_ack = False  # apply the write, then fail as if the reply was lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def load_memory(self, hardware_id: str) -> DeviceMemory:
        self.loads += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.down:
            raise ConnectionRefusedError("database is down")
        return await self.inner.load_memory(hardware_id)

    async def update_memory(self, hardware_id: str, **change: Any) -> None:
        if self.down:
            raise ConnectionRefusedError("database is down")
        await self.inner.update_memory(hardware_id, **change)
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise ConnectionResetError("connection lost before the commit was acknowledged")

    async def apply_batch(self, batch: Sequence[tuple[WriteOp, str]]) -> None:
        # The outbox applies queued writes in batches too: the same switches hold for them.
        if self.down:
            raise ConnectionRefusedError("database is down")
        await self.inner.apply_batch(batch)
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise ConnectionResetError("connection lost before the commit was acknowledged")


@pytest.fixture
def store(repository: Repository) -> Switchable:
    return Switchable(repository)


@pytest.fixture
async def outbox(store: Switchable, tmp_path: Path) -> AsyncIterator[Outbox]:
    box = Outbox(store, tmp_path / "outbox" / "queue.db", **FAST)  # type: ignore[arg-type]
    await box.start()
    yield box
    await box.close(timeout=2)


def service(store: Switchable, outbox: Outbox, **options: Any) -> MemoryService:
    return MemoryService(store, outbox, **options)  # type: ignore[arg-type]


async def flushed(outbox: Outbox) -> None:
    await eventually(lambda: outbox.pending() == 0)


# --- the merge op, applied by the repository -------------------------------------------------


async def test_update_memory_merges_instead_of_replacing(repository: Repository):
    await repository.save_memory(HW, ["The user likes tea."], [Exchange("hi", "hello", T0)])
    await repository.update_memory(
        HW,
        add_facts=("The user's name is Alex.", "the user likes   TEA"),
        exchange=Exchange("I like tea", "Noted!", T0 + timedelta(seconds=1)),
        max_facts=50,
        max_recent=6,
    )
    memory = await repository.load_memory(HW)
    assert memory.facts == ["The user's name is Alex.", "the user likes TEA"]  # a repeat moves
    assert [item.user for item in memory.recent] == ["hi", "I like tea"]


async def test_update_memory_forgets_first_drops_secrets_and_keeps_bounds(repository: Repository):
    for index in range(4):
        await repository.update_memory(
            HW,
            add_facts=(f"The user likes topic{index}.",),
            exchange=Exchange(f"q{index}", f"a{index}", T0 + timedelta(seconds=index)),
            max_facts=3,
            max_recent=2,
        )
    await repository.update_memory(
        HW,
        add_facts=("The user likes topic1 again.", "The user's password is hunter2."),
        forget="topic1",
        max_facts=3,
        max_recent=2,
    )
    memory = await repository.load_memory(HW)
    assert memory.facts == [
        "The user likes topic2.",
        "The user likes topic3.",
        "The user likes topic1 again.",
    ]
    assert [item.user for item in memory.recent] == ["q2", "q3"]


async def test_concurrent_updates_of_a_new_device_lose_nothing(repository: Repository):
    await asyncio.gather(
        *(
            repository.update_memory(
                "hw-new", add_facts=(f"The user likes topic{i}.",), max_facts=50, max_recent=6
            )
            for i in range(12)
        )
    )
    assert len((await repository.load_memory("hw-new")).facts) == 12


def test_update_memory_op_round_trips_through_json():
    full = UpdateMemory(HW, ("a", "b"), "jazz", Exchange("q", "a", T0), 7, 3, T0)
    bare = UpdateMemory(HW, at=T0)
    assert decode_op(encode_op(full)) == full
    assert decode_op(encode_op(bare)) == bare
    old = '{"kind":"update_memory","at":"2026-03-01T08:30:00+00:00","data":{"hardware_id":"x"}}'
    assert decode_op(old) == UpdateMemory("x", at=T0)  # optional fields may be missing
    with pytest.raises(ValueError):
        UpdateMemory(HW, max_facts=0)


def test_merge_is_idempotent_so_a_replayed_write_changes_nothing():
    base = (["The user likes tea."], [Exchange("old", "x", T0)])
    change: dict[str, Any] = {
        "add": ("The user likes jazz.",),
        "forget": "tea",
        "exchange": Exchange("new", "y", T0 + timedelta(seconds=5)),
        "max_facts": 50,
        "max_recent": 1,
    }
    once = merge(*base, **change)
    twice = merge(once[0], once[1], **change)
    assert once[:2] == twice[:2] == (["The user likes jazz."], [change["exchange"]])
    # An exchange older than the whole window is not re-appended as the newest.
    assert add_exchange(once[1], Exchange("old", "x", T0), 1) == once[1]


@pytest.mark.parametrize(
    ("fact", "query"),
    [
        ("I like jazz", "jazz"),
        ("my name is Alex", "my name"),
        ("Я люблю джаз", "джазе"),
        ("The user likes jazz.", "I like jazz"),
        ("The user's name is Alex.", "my name"),
        ("Пользователь любит джаз.", "я люблю джаз"),
        ("Пользователь живёт в Берлине.", "я живу в Берлине"),
    ],
)
async def test_forget_matching_covers_in_process_memory_and_third_person_facts(
    fact: str, query: str
):
    old = InProcessMemory()
    await old.remember(HW, fact)
    if await old.forget(HW, query):
        assert mentions(fact, query), "whatever InProcessMemory forgets is forgotten here too"
    assert mentions(fact, query)
    assert not mentions("The user likes tea.", query)


# --- the service ------------------------------------------------------------------------------


async def test_facts_from_one_turn_are_in_a_later_read(store: Switchable, outbox: Outbox):
    first = service(store, outbox)
    await first.after_turn(HW, "My name is Alex and I like jazz", "Nice to meet you!", "completed")
    await flushed(outbox)
    later = service(store, outbox)  # a fresh process: nothing cached
    snapshot = await later.read(HW)
    assert snapshot.facts == ("The user's name is Alex.", "The user likes jazz.")
    assert [(item.user, item.assistant) for item in snapshot.recent] == [
        ("My name is Alex and I like jazz", "Nice to meet you!")
    ]
    context = later.context(snapshot)
    # Data, not prose: each model renders facts and history in its own message format.
    assert context == MemoryContext(
        ("The user's name is Alex.", "The user likes jazz."),
        (LLMExchange("My name is Alex and I like jazz", "Nice to meet you!"),),
    )
    assert await later.read_context(HW) == context
    assert later.context(MemorySnapshot()) == MemoryContext()


async def test_facts_accumulate_across_turns_and_repeats_merge(
    store: Switchable, outbox: Outbox, repository: Repository
):
    memory = service(store, outbox)
    await memory.after_turn(HW, "my name is Alex", "Hi Alex!", "completed")
    await memory.after_turn(HW, "I like jazz", "Great taste.", "completed")
    await memory.after_turn(HW, "I live in Berlin", "Nice city.", "completed")
    await memory.after_turn(HW, "I LIKE   Jazz", "You said.", "completed")
    await flushed(outbox)
    facts = (await repository.load_memory(HW)).facts
    assert facts == [
        "The user's name is Alex.",
        "The user lives in Berlin.",
        "The user likes Jazz.",
    ]


async def test_bounds_hold(store: Switchable, outbox: Outbox, repository: Repository):
    memory = service(store, outbox, max_facts=3, max_recent=2)
    for index in range(6):
        await memory.after_turn(HW, f"I like topic{index}", f"reply {index}", "completed")
    await flushed(outbox)
    stored = await repository.load_memory(HW)
    assert stored.facts == [f"The user likes topic{index}." for index in (3, 4, 5)]
    assert [item.user for item in stored.recent] == ["I like topic4", "I like topic5"]
    assert (await service(store, outbox, max_facts=3, max_recent=2).read(HW)).facts == tuple(
        stored.facts
    )


async def test_each_read_loads_once_and_same_turn_recall_uses_the_cache(
    store: Switchable, outbox: Outbox
):
    memory = service(store, outbox)
    for expected in (1, 2, 3):
        await memory.read(HW)
        assert store.loads == expected
    await memory.remember(HW, "I like tea")
    assert await memory.recall(HW) == ["I like tea"]
    memory.context(await memory.read(HW))
    assert store.loads == 4, "recall within the cache TTL does not read again"


async def test_a_hanging_read_costs_the_turn_its_memory_not_its_time(
    store: Switchable, outbox: Outbox
):
    memory = service(store, outbox, read_budget_s=0.05)
    store.hang = True
    started = time.perf_counter()
    snapshot = await memory.read(HW)
    assert time.perf_counter() - started < 0.5
    assert snapshot == MemorySnapshot()
    assert memory.stats.read_timeouts == 1 and store.loads == 1
    assert memory.status().state is State.DEGRADED
    store.hang = False
    await memory.read(HW)
    assert memory.status().state is State.READY


async def test_twenty_turns_during_an_outage_all_land_after_it(
    store: Switchable, outbox: Outbox, repository: Repository
):
    memory = service(store, outbox, max_recent=20)
    store.down = True
    for index in range(20):
        await memory.after_turn(HW, f"I like topic{index:02d}", f"reply {index}", "completed")
    await memory.remember(HW, "my locker is number 12")
    # Nothing disappears meanwhile: this process still sees its own queued writes.
    snapshot = await service_read_during_outage(memory)
    assert len(snapshot.facts) == 21 and len(snapshot.recent) == 20
    assert "my locker is number 12" in await memory.recall(HW)
    assert outbox.pending() == 21
    store.down = False
    await flushed(outbox)
    stored = await repository.load_memory(HW)
    assert stored.facts == [f"The user likes topic{i:02d}." for i in range(20)] + [
        "my locker is number 12"
    ]
    assert [item.user for item in stored.recent] == [f"I like topic{i:02d}" for i in range(20)]
    assert (await memory.read(HW)).facts == tuple(stored.facts)


async def service_read_during_outage(memory: MemoryService) -> MemorySnapshot:
    snapshot = await memory.read(HW)
    assert memory.stats.read_errors >= 1
    return snapshot


async def test_a_replay_after_a_lost_acknowledgement_stores_the_exchange_once(
    store: Switchable, outbox: Outbox, repository: Repository
):
    store.lose_next_ack = True
    await service(store, outbox).after_turn(HW, "I like tea", "Me too.", "completed")
    await flushed(outbox)
    stored = await repository.load_memory(HW)
    assert [item.user for item in stored.recent] == ["I like tea"]
    assert stored.facts == ["The user likes tea."]


async def test_forget_works_for_remembered_and_learned_facts(
    store: Switchable, outbox: Outbox, repository: Repository
):
    memory = service(store, outbox)
    await memory.after_turn(HW, "I like jazz and I live in Berlin", "Cool.", "completed")
    await memory.after_turn(HW, "я люблю чай", "Отлично.", "completed")
    await memory.remember(HW, "my car is blue")
    assert await memory.forget(HW, "I like jazz") == 1
    assert await memory.forget(HW, "я люблю чай") == 1
    assert await memory.forget(HW, "tennis") == 0
    assert await memory.recall(HW) == ["The user lives in Berlin.", "my car is blue"]
    await flushed(outbox)
    assert (await repository.load_memory(HW)).facts == [
        "The user lives in Berlin.",
        "my car is blue",
    ]
    assert await memory.forget(HW, "everything") == 2
    await flushed(outbox)
    assert await repository.load_memory(HW) == DeviceMemory([], [])
    assert await service(store, outbox).recall(HW) == []


async def test_intents_remember_recall_and_forget_through_the_service(
    store: Switchable, outbox: Outbox
):
    memory = service(store, outbox)
    intents = IntentMatcher(memory)
    store.down = True  # works even while the database is down
    said = await intents.match("remember that my name is Alex", HW, False, False)
    assert said is not None and "remember" in said.text
    recalled = await intents.match("what do you remember about me", HW, False, False)
    assert recalled is not None and "your name is Alex" in recalled.text
    store.down = False
    await flushed(outbox)
    wiped = await intents.match("forget everything", HW, False, False)
    assert wiped is not None and "forgotten everything" in wiped.text
    await flushed(outbox)
    assert await service(store, outbox).recall(HW) == []


async def test_secrets_are_never_stored(
    store: Switchable, outbox: Outbox, repository: Repository, tmp_path: Path
):
    memory = service(store, outbox)
    await memory.after_turn(HW, "my password is hunter2", "I won't keep that.", "completed")
    await memory.remember(HW, "my pin code is 4321")
    assert await memory.forget(HW, "password hunter2") == 0
    await flushed(outbox)
    stored = await repository.load_memory(HW)
    assert stored.facts == []
    assert [item.user for item in stored.recent] == [WITHHELD]
    spool = b"".join(path.read_bytes() for path in (tmp_path / "outbox").iterdir())
    assert b"hunter2" not in spool and b"4321" not in spool


async def test_an_interrupted_turn_records_what_was_actually_said(
    store: Switchable, outbox: Outbox, repository: Repository
):
    await service(store, outbox).after_turn(
        HW, "tell me about jazz", "Jazz began in", "interrupted"
    )
    await flushed(outbox)
    (exchange,) = (await repository.load_memory(HW)).recent
    assert exchange.assistant.startswith("Jazz began in") and "interrupted" in exchange.assistant


class ScriptLLM:
    """A tiny cloud-model stand-in: one canned reply per request."""

    name = "script"
    supports_images = False

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls = 0

    async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        self.calls += 1
        yield self.reply


async def test_llm_analysis_runs_in_the_worker_and_falls_back_to_rules(
    store: Switchable, outbox: Outbox, repository: Repository
):
    llm = ScriptLLM('```json\n{"facts": ["The user plays the cello."]}\n```')
    memory = service(store, outbox, llm_analyzer=LLMAnalyzer(llm))
    await memory.start()
    try:
        await memory.after_turn(HW, "I play the cello, you know", "Lovely!", "completed")
        await eventually(lambda: llm.calls == 1)
        llm.reply = "no JSON here"  # a failed analysis falls back to the rule facts
        await memory.after_turn(HW, "I like jazz", "Nice.", "completed")
        await memory.after_turn(HW, "forget that I like jazz", "Done.", "completed")
        assert llm.calls <= 2, "memory commands are not sent to the model"
    finally:
        await memory.close()
    await flushed(outbox)
    stored = await repository.load_memory(HW)
    assert stored.facts == ["The user plays the cello.", "The user likes jazz."]
    assert memory.stats.analyses_failed == 1 and len(stored.recent) == 3


async def test_a_forget_cancels_facts_still_being_analysed(store: Switchable, outbox: Outbox):
    gate = asyncio.Event()

    class SlowLLM(ScriptLLM):
        async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
            await gate.wait()
            yield self.reply

    memory = service(
        store, outbox, llm_analyzer=LLMAnalyzer(SlowLLM('{"facts": ["The user likes jazz."]}'))
    )
    await memory.start()
    await memory.after_turn(HW, "I like jazz", "Nice.", "completed")
    await memory.forget(HW, "jazz")
    gate.set()
    await memory.close()
    assert await memory.recall(HW) == []


async def test_context_stays_compact_and_keeps_the_newest(store: Switchable, outbox: Outbox):
    memory = service(store, outbox, max_context_chars=300)
    snapshot = MemorySnapshot(
        tuple(f"The user likes topic{i:02d}." for i in range(30)),
        tuple(Exchange(f"question {i} " + "x" * 400, f"answer {i}", T0) for i in range(6)),
    )
    context = memory.context(snapshot)
    assert sum(len(fact) + 1 for fact in context.facts) <= 300 and not context.history
    assert context.facts[-1] == "The user likes topic29." and "topic00" not in str(context)
    facts_only = memory.context(MemorySnapshot(("The user likes tea.",), snapshot.recent[-1:]))
    assert facts_only.facts == ("The user likes tea.",)
    (exchange,) = facts_only.history
    assert exchange.user.startswith("question 5 xxx") and exchange.user.endswith("…")
    assert len(exchange.user) == 200  # long turns are clipped


@pytest.mark.parametrize(
    ("prompt", "reply"),
    [
        ("what is the capital of Italy", "What is the capital of Italy?"),  # an echo
        ("Hello, who are you?", "Без интернационы, есть?"),  # the wrong script
        ("Hello, who are you?", "  "),  # nothing said
    ],
)
async def test_a_degenerate_reply_never_becomes_history(
    store: Switchable, outbox: Outbox, repository: Repository, prompt: str, reply: str
):
    memory = service(store, outbox)
    await memory.after_turn(HW, prompt, reply, "completed")
    await memory.after_turn(HW, "How many legs does a spider have?", "Eight.", "completed")
    await flushed(outbox)
    stored = await repository.load_memory(HW)
    assert [(item.user, item.assistant) for item in stored.recent] == [
        ("How many legs does a spider have?", "Eight.")
    ]
    assert [item.user for item in (await memory.read(HW)).recent] == [
        "How many legs does a spider have?"
    ]


async def test_discard_drops_the_cached_view_of_a_deleted_device(
    store: Switchable, outbox: Outbox, repository: Repository
):
    memory = service(store, outbox)
    await memory.remember(HW, "I like tea")
    await flushed(outbox)
    await repository.delete_device(HW)
    memory.discard(HW)
    assert await memory.recall(HW) == []
