"""The turn pipeline's scheduling: when a sentence is spoken, and how many synthesize at once.

No timing: fakes hold the LLM and the TTS at chosen points, so each test shows what the pipeline
does before something else has happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from nexy.config import Settings
from nexy.events import Action, AudioChunk, TextChunk, TurnEnd, TurnEvent
from nexy.providers.llm.base import LLMRequest
from nexy.providers.tts.base import Voice
from nexy.turn.actions import ActionPolicy
from nexy.turn.runner import TurnRequest, TurnRunner
from tests.waiting import eventually

ONE_SENTENCE = "Opening Safari."
WITH_COMMAND = [
    '{"text": "Opening',
    ' Safari."',  # the text closes here; what follows is only the command
    ', "command": "open_app",',
    ' "args": {"app_name": "Safari"}}',
]


class GatedLLM:
    """Streams ``before``, waits for ``gate``, then streams ``after``."""

    name = "gated"
    supports_images = False

    def __init__(self, before: list[str], after: list[str]) -> None:
        self.before, self.after = before, after
        self.gate = asyncio.Event()

    async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        for fragment in self.before:
            yield fragment
        await self.gate.wait()
        for fragment in self.after:
            yield fragment


class HeldTTS:
    """Each synthesis announces itself, then waits until released; records how many overlap."""

    name = "held"
    sample_rate = 24000

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = asyncio.Event()
        self.active = self.most_at_once = 0

    async def synthesize(self, text: str, voice: Voice) -> AsyncIterator[bytes]:
        self.started.append(text)
        self.active += 1
        self.most_at_once = max(self.most_at_once, self.active)
        try:
            await self.release.wait()
            yield b"\x10\x20" * 2400  # 100 ms of a non-silent sample
        finally:
            self.active -= 1


def runner(llm: object, tts: object, **turn: object) -> TurnRunner:
    settings = Settings(turn=turn) if turn else Settings()
    return TurnRunner(
        llm=llm,  # type: ignore[arg-type]
        tts=tts,  # type: ignore[arg-type]
        policy=ActionPolicy(settings.actions),
        system_prompt="",
        turn=settings.turn,
        tts_settings=settings.tts,
    )


async def events_until(out: asyncio.Queue[TurnEvent], wanted: type) -> list[TurnEvent]:
    seen: list[TurnEvent] = []
    while not isinstance(seen[-1] if seen else None, wanted):
        seen.append(await asyncio.wait_for(out.get(), 5))
    return seen


async def test_the_last_sentence_is_spoken_before_the_command_arrives() -> None:
    llm, tts = GatedLLM(WITH_COMMAND[:2], WITH_COMMAND[2:]), HeldTTS()
    tts.release.set()
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    turn = asyncio.create_task(runner(llm, tts).run(TurnRequest("D", "s", "open safari"), out))
    # The LLM is still holding back the command, and its stream has not ended.
    first = await events_until(out, AudioChunk)
    assert [e.text for e in first if isinstance(e, TextChunk)] == [ONE_SENTENCE]
    assert tts.started == [ONE_SENTENCE]
    llm.gate.set()
    rest = await events_until(out, TurnEnd)
    await turn
    actions = [e for e in rest if isinstance(e, Action)]
    assert len(actions) == 1 and actions[0].command == "open_app"
    assert not [e for e in rest if isinstance(e, TextChunk)]  # nothing spoken twice


async def test_sentences_synthesize_at_once_and_arrive_in_order() -> None:
    sentences = ["One is here.", " Two is here.", " Three is here.", " Four is here."]
    llm, tts = GatedLLM([f'{{"text": "{"".join(sentences)}"}}'], []), HeldTTS()
    llm.gate.set()
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    turn = asyncio.create_task(runner(llm, tts).run(TurnRequest("D", "s", "count"), out))
    # Every sentence is complete at once: every one starts before any has produced audio.
    await eventually(lambda: len(tts.started) == len(sentences))
    assert tts.most_at_once == len(sentences)
    tts.release.set()
    events = await events_until(out, TurnEnd)
    await turn
    spoken = [e.text for e in events if isinstance(e, TextChunk)]
    # None merged (merging would only have delayed them); the text is unchanged.
    assert [s.strip() for s in spoken] == [s.strip() for s in sentences]
    assert "".join(spoken) == "".join(sentences)


async def test_with_one_slot_the_sentences_that_waited_are_merged() -> None:
    sentences = ["One is here.", " Two is here.", " Three is here."]
    llm, tts = GatedLLM([f'{{"text": "{"".join(sentences)}"}}'], []), HeldTTS()
    llm.gate.set()
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    turn = asyncio.create_task(
        runner(llm, tts, synthesis_slots=1).run(TurnRequest("D", "s", "count"), out)
    )
    await eventually(lambda: bool(tts.started))
    for _ in range(20):  # let the preparer run: it must not start a second synthesis
        await asyncio.sleep(0)
    assert tts.started == [sentences[0]]
    tts.release.set()
    events = await events_until(out, TurnEnd)
    await turn
    assert tts.most_at_once == 1
    # The two that waited for the one slot became one utterance; the text is unchanged.
    assert tts.started == [sentences[0], (sentences[1] + sentences[2]).strip()]
    assert "".join(e.text for e in events if isinstance(e, TextChunk)) == "".join(sentences)


async def test_the_first_sentence_is_spoken_before_the_character_after_it() -> None:
    # "Sure." could still become "Sure.." or "Sure.com"; waiting for the next fragment would
    # cost the first audio a whole LLM chunk interval.
    llm, tts = GatedLLM(['{"text": "Sure.'], [' It is done."}']), HeldTTS()
    tts.release.set()
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    turn = asyncio.create_task(runner(llm, tts).run(TurnRequest("D", "s", "do it"), out))
    first = await events_until(out, AudioChunk)
    assert [e.text for e in first if isinstance(e, TextChunk)] == ["Sure."]
    llm.gate.set()
    rest = await events_until(out, TurnEnd)
    await turn
    spoken = "Sure." + "".join(e.text for e in rest if isinstance(e, TextChunk))
    assert spoken == "Sure. It is done."


class WholeSentenceTTS:
    """Hands over each sentence's audio at once, in 50 ms pieces (like Piper)."""

    name = "whole"
    sample_rate = 48000

    async def synthesize(self, text: str, voice: Voice) -> AsyncIterator[bytes]:
        for _ in range(40):  # two seconds
            yield b"\x10\x20" * 2400


async def turn_audio(**tts: object) -> list[int]:
    llm = GatedLLM(['{"text": "One is here. Two is here."}'], [])
    llm.gate.set()
    settings = Settings(tts=tts)
    runner = TurnRunner(
        llm=llm,  # type: ignore[arg-type]
        tts=WholeSentenceTTS(),  # type: ignore[arg-type]
        policy=ActionPolicy(settings.actions),
        system_prompt="",
        turn=settings.turn,
        tts_settings=settings.tts,
    )
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    turn = asyncio.create_task(runner.run(TurnRequest("D", "s", "count"), out))
    events = await events_until(out, TurnEnd)
    await turn
    return [len(e.pcm) for e in events if isinstance(e, AudioChunk)]


async def test_audio_already_waiting_goes_out_in_fewer_larger_messages() -> None:
    joined, separate = await turn_audio(), await turn_audio(coalesce_ms=0)
    assert sum(joined) == sum(separate) == 2 * 2 * 48000 * 2  # nothing lost or added
    assert joined[0] <= 9600  # the first audio is never held back to fill a larger message
    assert max(joined) <= 48000 and len(joined) < len(separate) / 3
    assert max(separate) <= 9600


async def test_an_engine_with_one_worker_gets_one_utterance_ahead() -> None:
    # More would only wait in its queue, and that wait counts against each one's time limit.
    sentences = ["One is here.", " Two is here.", " Three is here.", " Four is here."]
    llm, tts = GatedLLM([f'{{"text": "{"".join(sentences)}"}}'], []), HeldTTS()
    tts.syntheses_at_once = 1  # type: ignore[attr-defined]
    llm.gate.set()
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    turn = asyncio.create_task(runner(llm, tts).run(TurnRequest("D", "s", "count"), out))
    await eventually(lambda: len(tts.started) == 2)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(tts.started) == 2
    tts.release.set()
    events = await events_until(out, TurnEnd)
    await turn
    assert tts.most_at_once == 2
    assert "".join(e.text for e in events if isinstance(e, TextChunk)) == "".join(sentences)
