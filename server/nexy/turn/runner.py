"""The turn pipeline: LLM fragments → spoken text → segments → speech, all overlapping.

One turn is one owner coroutine (``_Turn.run``) with a task group: the *thinker* reads the LLM
stream, extracts the reply text and cuts it into segments (the last one the moment the reply's
text closes); the *preparer* turns segments into utterances and starts each one's synthesis as
soon as it exists, several at once within a bound; the *speaker* (the owner itself) puts each
utterance's text and audio, in order, on the outbound queue, which the transport drains onto
the wire. Queues between them are bounded, so a slow stage slows the ones before it
instead of growing memory. Cancelling the owner task stops the LLM request and the synthesis at
once (every provider stream is closed through ``aclosing``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass, field

from nexy.config import TTSSettings, TurnSettings
from nexy.events import ErrorKind, TextChunk, TurnEnd, TurnError, TurnEvent
from nexy.providers.llm.base import Image, LLMProvider, MemoryContext, TokenMeter
from nexy.providers.tts.audio import chunk_bytes_for
from nexy.providers.tts.base import TTSProvider, syntheses_at_once
from nexy.turn.actions import ActionPolicy
from nexy.turn.extract import ReplyExtractor
from nexy.turn.prompt import build_request
from nexy.turn.segment import SentenceSegmenter
from nexy.turn.speech import SpeechFormat, Utterance, Voicebox
from nexy.turn.speech_text import clean_for_speech

log = logging.getLogger(__name__)

UNAVAILABLE_TEXT = "The assistant is unavailable right now, please try again."


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A validated COMMIT."""

    hardware_id: str
    session_id: str
    prompt: str
    image: Image | None = None
    memory_context: MemoryContext = MemoryContext()  # read once by the transport
    # The model's token counts for this turn land here (the journal records them afterwards).
    meter: TokenMeter = field(default_factory=TokenMeter, compare=False)


@dataclass(frozen=True, slots=True)
class _ReplyDone:
    """The thinker's last word: the command found in the reply, or why the LLM failed."""

    command: str | None = None
    args: dict[str, object] = field(default_factory=dict)
    failed: bool = False
    produced: bool = False  # whether any segment was handed to the speaker before the end


class TurnRunner:
    """Builds and runs turns with the configured providers."""

    def __init__(
        self,
        *,
        llm: LLMProvider,
        tts: TTSProvider,
        policy: ActionPolicy,
        system_prompt: str,
        turn: TurnSettings,
        tts_settings: TTSSettings,
        default_language: str = "en",
    ) -> None:
        self.llm = llm
        self.tts = tts
        self.policy = policy
        self.system_prompt = system_prompt
        self.settings = turn
        self.speech_format = SpeechFormat(
            sample_rate=tts_settings.sample_rate,
            chunk_bytes=chunk_bytes_for(tts_settings.sample_rate, tts_settings.chunk_ms),
            coalesce_bytes=chunk_bytes_for(
                tts_settings.sample_rate, max(tts_settings.coalesce_ms, tts_settings.chunk_ms)
            ),
            default_language=default_language,
        )

    async def run(self, request: TurnRequest, out: asyncio.Queue[TurnEvent]) -> None:
        """Run one turn; always ends by putting exactly one terminal event unless cancelled."""
        await _Turn(self, request, out).run()


class _Turn:
    """One turn: a thinker task, a preparer task (starts synthesis), and the speaker (owner)."""

    def __init__(self, runner: TurnRunner, request: TurnRequest, out: asyncio.Queue[TurnEvent]):
        self.runner = runner
        self.request = request
        self.out = out
        self.segments: asyncio.Queue[str | _ReplyDone] = asyncio.Queue(
            maxsize=runner.settings.segment_queue
        )
        # Utterances synthesizing or sent, in order; the slots bound how many at once (the one
        # being sent included), and with them the audio a turn holds ahead of the client.
        # An engine with one worker gets one utterance ahead of the one being sent: more would
        # only queue there, their wait counted against their first-output limit.
        at_once = min(runner.settings.synthesis_slots, syntheses_at_once(runner.tts) + 1)
        self.slots = asyncio.Semaphore(at_once)
        # Every utterance in it holds a slot; one more place for the end of the reply.
        self.utterances: asyncio.Queue[Utterance | _ReplyDone] = asyncio.Queue(at_once + 1)
        self.voicebox = Voicebox(runner.tts, runner.speech_format)
        # One formatter (and resampler) for the turn: utterances are converted one at a time.
        self.formatter = self.voicebox.formatter()
        self.spoke = False

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._think())
            group.create_task(self._prepare(group))
            done = await self._speak_utterances()
            await self._finish(done, group)

    async def _think(self) -> None:
        runner, request = self.runner, self.request
        llm_request = build_request(
            runner.system_prompt,
            request.prompt,
            request.memory_context,
            request.image,
            request.hardware_id,
            request.meter,
        )
        extractor = ReplyExtractor()
        segmenter = SentenceSegmenter(
            first_max_chars=runner.settings.first_segment_max_chars,
            # Sentences are merged only when they are already waiting (see _prepare), so no
            # merging ever delays audio; the segmenter itself emits each sentence at once.
            target_chars=1,
            max_chars=runner.settings.segment_max_chars,
        )
        produced = False
        flushed = False  # the reply's text is complete and every segment of it was handed on
        try:
            async with aclosing(runner.llm.stream(llm_request)) as stream:
                async for fragment in stream:
                    segments = segmenter.push(extractor.feed(fragment))
                    if extractor.text_complete and not flushed:
                        # The last sentence needs no following character, nor the command.
                        segments += segmenter.flush()
                        flushed = True
                    elif not produced and not segments:
                        # The first sentence is spoken before the character confirming its end.
                        segments = segmenter.take_tentative()
                    for segment in segments:
                        produced = True
                        await self.segments.put(segment)
        except Exception as exc:  # stage boundary: any provider failure becomes a typed result
            log.warning("llm %s failed: %s", runner.llm.name, type(exc).__name__)
            await self.segments.put(_ReplyDone(failed=True, produced=produced))
            return
        tail = extractor.finish()
        for segment in [*segmenter.push(tail.text), *segmenter.flush()]:
            produced = True
            await self.segments.put(segment)
        await self.segments.put(_ReplyDone(tail.command, tail.args, produced=produced))

    async def _prepare(self, group: asyncio.TaskGroup) -> None:
        """Segments → utterances, each synthesized as soon as its text is complete and a
        synthesis slot is free; the speaker sends them in order."""
        target = self.runner.settings.segment_target_chars
        while True:
            item = await self.segments.get()
            if isinstance(item, _ReplyDone):
                await self.utterances.put(item)
                return
            waited = self.slots.locked()
            await self.slots.acquire()  # released when the speaker has sent this utterance
            text, done = item, None
            # Sentences that waited for a slot are merged: none could have started sooner, and
            # one synthesis of both ends no later than two. Without a wait, nothing is merged.
            while waited and len(text) < target and not self.segments.empty():
                waiting = self.segments.get_nowait()
                if isinstance(waiting, _ReplyDone):
                    done = waiting
                    break
                text += waiting
            # The client is sent exactly what is spoken: markdown, emoji and symbols cleaned.
            text = clean_for_speech(text)
            if text.strip():
                utterance = self.voicebox.utterance(text)
                utterance.start(self.voicebox, group)
                self.utterances.put_nowait(utterance)  # never full: slots bound it
            else:
                self.slots.release()
            if done is not None:
                await self.utterances.put(done)
                return

    async def _speak_utterances(self) -> _ReplyDone:
        while True:
            item = await self.utterances.get()
            if isinstance(item, _ReplyDone):
                return item
            await self._send(item)
            self.slots.release()

    async def _send(self, utterance: Utterance) -> None:
        await self.out.put(TextChunk(utterance.text))
        self.spoke = True
        await utterance.send(self.formatter, self.out.put)

    async def _finish(self, done: _ReplyDone, group: asyncio.TaskGroup) -> None:
        settings = self.runner.settings
        if done.failed and not self.spoke:
            if settings.on_providers_down == "error":
                await self.out.put(TurnError(ErrorKind.UNAVAILABLE, UNAVAILABLE_TEXT))
                return
            await self._say(settings.fallback_text, group)
        elif done.failed:
            await self._say(" " + settings.apology_text, group)
        action = None if done.failed else self.runner.policy.validate(done.command, done.args)
        if not self.spoke and action is None:
            await self._say(settings.fallback_text, group)
        if action is not None:
            await self.out.put(action)
        await self.out.put(TurnEnd())

    async def _say(self, text: str, group: asyncio.TaskGroup) -> None:
        """Speak a closing sentence (fallback or apology), after everything else."""
        utterance = self.voicebox.utterance(text)
        utterance.start(self.voicebox, group)
        await self._send(utterance)
