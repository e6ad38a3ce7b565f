"""StreamAudio of ``streaming.StreamingService``: validation, admission, and draining a turn.

The streaming RPCs write with ``context.write`` rather than ``yield`` so every write can carry
a timeout: a client that stops reading (``limits.idle_timeout_seconds``) or reads audio slower
than it plays (``limits.slow_reader_seconds``, see idle_writes.py) has its stream ended with
DEADLINE_EXCEEDED and its turn cancelled and recorded. Together with the bounded per-turn queue
and the per-connection and per-address turn caps this bounds what slow clients can hold.

The turn's record is on local disk before its terminal message is written (journal.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import grpc

from nexy.config import LimitsSettings
from nexy.events import Action, AudioChunk, ErrorKind, TextChunk, TurnError, TurnEvent
from nexy.metrics import Metrics
from nexy.transport.grpc import codec
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from nexy.transport.grpc.device_rpcs import DeviceRpcs
from nexy.transport.grpc.idle_writes import ClientIdle, ReadPace, SlowReader
from nexy.transport.grpc.requests import (
    COLLECT,
    RequestError,
    StreamCall,
    parse_stream_request,
)
from nexy.turn.actions import action_json
from nexy.turn.collect import CollectStore, merge_prompt
from nexy.turn.journal import TurnJournal, TurnLog, TurnMemory
from nexy.turn.runner import TurnRequest, TurnRunner
from nexy.turn.tracker import AdmissionError, TurnHandle, TurnTracker
from nexy.turn.welcome import WelcomeSpeaker
from nexy.usage import UsageSink

log = logging.getLogger(__name__)

COLLECT_ACCEPTED = "COLLECT_ACCEPTED"
INTERNAL_TEXT = "internal server error"
_ERROR_DONE = object()  # queue sentinel: the turn's owner task ended


def _wake(out: asyncio.Queue[TurnEvent | object]) -> None:
    """Wake the drain loop when the owner task ends without a terminal event (interrupt, bug).

    A full queue needs no wake-up: the drain loop is busy and checks ``task.done()`` once empty.
    """
    if not out.full():
        out.put_nowait(_ERROR_DONE)


class StreamingServicer(DeviceRpcs, pb_grpc.StreamingServiceServicer):
    """Wire-compatible implementation of the Nexy contract (SPEC §3–§4); StreamAudio here."""

    def __init__(
        self,
        *,
        limits: LimitsSettings,
        runner: TurnRunner,
        tracker: TurnTracker,
        collect: CollectStore,
        welcome: WelcomeSpeaker,
        usage: UsageSink,
        memory: TurnMemory,
        journal: TurnJournal,
        metrics: Metrics,
    ) -> None:
        self._limits = limits
        self._runner = runner
        self._tracker = tracker
        self._collect = collect
        self._welcome = welcome
        self._usage = usage
        self._memory = memory
        self._journal = journal
        self._metrics = metrics

    async def StreamAudio(  # noqa: N802 - the generated base class fixes the name
        self, request: pb.StreamRequest, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            await self._stream_audio(request, context)
        except ClientIdle:
            self._end_idle(context)
        except SlowReader:
            self._end_slow(context)

    async def _stream_audio(
        self, request: pb.StreamRequest, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            call = parse_stream_request(request, self._limits)
            if call.phase == COLLECT:
                self._collect_chunk(call)
                await self._write(context, pb.StreamResponse(end_message=COLLECT_ACCEPTED))
                return
            turn = self._commit(call)
            handle = await self._tracker.admit(call.hardware_id, call.session_id, context.peer())
        except RequestError as exc:
            await self._fail(context, TurnError(ErrorKind.INVALID_ARGUMENT, str(exc)))
            return
        except AdmissionError as exc:
            self._metrics.rejections.labels(exc.reason).inc()
            await self._fail(context, TurnError(exc.kind, exc.message))
            return
        await self._drive(turn, handle, context)

    def _collect_chunk(self, call: StreamCall) -> None:
        key = (call.hardware_id, call.session_id)
        self._collect.update(key, call.chunk_seq, call.chunk_text, call.screenshot)
        self._metrics.collects.inc()

    def _commit(self, call: StreamCall) -> TurnRequest:
        buffered = self._collect.take((call.hardware_id, call.session_id))
        prompt = merge_prompt(call.prompt, buffered.text if buffered else call.chunk_text)
        if not prompt:
            raise RequestError("prompt is empty: nothing to answer")
        image = call.screenshot or (buffered.screenshot if buffered else None)
        return TurnRequest(call.hardware_id, call.session_id, prompt, image)

    async def _drive(
        self, turn: TurnRequest, handle: TurnHandle, context: grpc.aio.ServicerContext
    ) -> None:
        """Run the turn in its own task and send its events until the terminal one."""
        started = time.perf_counter()
        self._metrics.active_turns.inc()
        journal = TurnLog(
            turn.hardware_id,
            turn.session_id,
            turn.prompt,
            self._runner.llm.name,
            self._runner.tts.name,
            tokens=turn.meter,
        )
        task: asyncio.Task[None] | None = None
        pace = ReadPace(self._limits.slow_reader_seconds)
        try:
            memory = await self._memory.read_context(turn.hardware_id)
            out: asyncio.Queue[TurnEvent | object] = asyncio.Queue(
                self._limits.outbound_queue_events
            )
            task = asyncio.create_task(
                self._runner.run(replace(turn, memory_context=memory), out)  # type: ignore[arg-type]
            )
            handle.task = task
            task.add_done_callback(lambda _: _wake(out))
            while True:
                event = await self._next_event(out, task, handle)
                self._note(journal, event, (time.perf_counter() - started) * 1000)
                if codec.is_terminal(event):
                    await self._terminal(context, event, journal, handle.interrupted, started)
                    break
                if isinstance(event, AudioChunk):
                    pace.add_audio(len(event.pcm), event.sample_rate)
                await self._write(context, codec.stream_response(event, turn.session_id), pace)
        finally:
            pace.watch.close()
            try:
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.wait([task], timeout=1.0)
            finally:
                # A client that cancels while a write waits on flow control gets this handler
                # cancelled twice; the second cancellation lands in the wait above, and without
                # this the turn's admission slot would never be given back.
                self._end_turn(handle, journal, started)

    async def _terminal(
        self,
        context: grpc.aio.ServicerContext,
        event: TurnEvent,
        journal: TurnLog,
        interrupted: bool,
        started: float,
    ) -> None:
        """Put the turn's record on disk, then send its end_message or error_message."""
        if isinstance(event, TurnError):
            journal.outcome = "interrupted" if interrupted else "failed"
        else:
            journal.outcome = "completed"
        await self._journal.write_record(journal, (time.perf_counter() - started) * 1000)
        if isinstance(event, TurnError):
            await self._fail(context, event)
        else:
            await self._write(context, codec.stream_response(event, journal.session_id))

    def _end_turn(self, handle: TurnHandle, journal: TurnLog, started: float) -> None:
        self._tracker.release(handle)
        total_ms = (time.perf_counter() - started) * 1000
        self._metrics.active_turns.dec()
        self._metrics.turns.labels(journal.outcome).inc()
        self._metrics.turn_duration.observe(total_ms / 1000)
        self._journal.submit(journal, total_ms)

    def _note(self, journal: TurnLog, event: TurnEvent, elapsed_ms: float) -> None:
        """Record what reaches the client: the spoken text, the action, first-byte times."""
        if isinstance(event, TextChunk):
            journal.spoken.append(event.text)
            if journal.first_text_ms is None:
                journal.first_text_ms = elapsed_ms
                self._metrics.first_text.observe(elapsed_ms / 1000)
        elif isinstance(event, AudioChunk) and journal.first_audio_ms is None:
            journal.first_audio_ms = elapsed_ms
            self._metrics.first_audio.observe(elapsed_ms / 1000)
        elif isinstance(event, Action):
            journal.action_json = action_json(event, journal.session_id)

    async def _next_event(
        self, out: asyncio.Queue[TurnEvent | object], task: asyncio.Task[None], handle: TurnHandle
    ) -> TurnEvent:
        if handle.interrupted:
            return handle.reason
        if out.empty() and task.done():
            return self._owner_ended(task, handle)
        item = await out.get()
        if item is _ERROR_DONE:
            return self._owner_ended(task, handle)
        if handle.interrupted:
            return handle.reason
        return item  # type: ignore[return-value]

    @staticmethod
    def _owner_ended(task: asyncio.Task[None], handle: TurnHandle) -> TurnEvent:
        if handle.interrupted:
            return handle.reason
        if not task.cancelled() and task.exception() is not None:
            log.error("turn failed: %s", type(task.exception()).__name__)
        return TurnError(ErrorKind.INTERNAL, INTERNAL_TEXT)

    async def _fail(self, context: grpc.aio.ServicerContext, error: TurnError) -> None:
        """Send the error message, then end with its status (unless the write goes idle)."""
        await self._write(context, pb.StreamResponse(error_message=error.message))
        status = codec.STATUS[error.kind]
        context.set_code(status)
        context.set_details(error.message)
        self._metrics.errors.labels(status.name).inc()
