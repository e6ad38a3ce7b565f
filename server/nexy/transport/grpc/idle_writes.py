"""Writes that give up on a client that stopped reading, or reads slower than it listens.

Idle timeout (SPEC §9): a client that stops reading fills the HTTP/2 window, the write stops
completing, and after ``limits.idle_timeout_seconds`` the stream ends with DEADLINE_EXCEEDED.

Minimum read rate: a client that reads one message now and then never trips the idle timeout,
yet holds its admission slot for as long as it likes. A listener consumes audio at real-time
speed, so from the first audio chunk on, the time a stream spends *waiting on writes* may not
exceed the audio it was sent plus a lead of ``limits.slow_reader_seconds`` (the client may
buffer). Only write waits count: a turn that is slow because the LLM or TTS is slow is never
blamed on its client. The check is the write's own timeout, so it costs nothing per chunk.
A slow reader's stream also ends with DEADLINE_EXCEEDED: like an idle one, it did not keep up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import grpc

from nexy.config import LimitsSettings
from nexy.metrics import Metrics
from nexy.providers.wait_watch import WaitWatch

log = logging.getLogger(__name__)

IDLE_TEXT = "the client read nothing for {seconds:g} s; the stream was ended"
SLOW_TEXT = (
    "the client read the audio slower than it plays for more than {seconds:g} s; "
    "the stream was ended"
)


class ClientIdle(Exception):
    """A write did not complete within the idle timeout: the client stopped reading."""


class SlowReader(Exception):
    """The client fell further behind real-time playback than its allowed lead."""


@dataclass(slots=True)
class ReadPace:
    """One stream's audio sent and the time spent waiting for its client to read it."""

    lead_seconds: float
    audio_seconds: float = 0.0  # audio handed to the client so far
    waited_seconds: float = 0.0  # time writes waited, from the first audio chunk on
    watch: WaitWatch = field(default_factory=WaitWatch)  # the stream's one write timer

    def add_audio(self, pcm_bytes: int, sample_rate: int) -> None:
        """Count an audio chunk (int16 mono) before it is written."""
        self.audio_seconds += pcm_bytes / (2 * sample_rate)

    def budget(self) -> float | None:
        """How long the next write may wait; None before any audio (no pace to keep yet)."""
        if self.audio_seconds == 0.0:
            return None
        return max(0.0, self.audio_seconds + self.lead_seconds - self.waited_seconds)


class IdleWrites:
    """``_write`` with the idle timeout (and the read rate), and the statuses they end with."""

    _limits: LimitsSettings
    _metrics: Metrics

    async def _write(
        self, context: grpc.aio.ServicerContext, response: object, pace: ReadPace | None = None
    ) -> None:
        idle = self._limits.idle_timeout_seconds
        budget = pace.budget() if pace is not None else None
        limit = idle if budget is None else min(idle, budget)
        loop = asyncio.get_running_loop()
        began = loop.time()
        late = SlowReader if budget is not None and budget < idle else ClientIdle
        try:
            if pace is None:  # a single message: one timer is no cost
                async with asyncio.timeout(limit):
                    await context.write(response)
                return
            # A turn's many writes share one timer (see WaitWatch) instead of one each.
            pace.watch.begin(limit)
            try:
                await context.write(response)
            except asyncio.CancelledError:
                if pace.watch.expired():
                    raise late from None
                raise
            finally:
                pace.watch.end()
        except TimeoutError:
            raise late from None
        finally:
            if pace is not None and budget is not None:
                pace.waited_seconds += loop.time() - began

    def _end_idle(self, context: grpc.aio.ServicerContext) -> None:
        # No error_message here: the timed-out write is still pending in gRPC core, and a second
        # write on the call is refused (TOO_MANY_OPERATIONS), so the status details carry it.
        seconds = self._limits.idle_timeout_seconds
        log.warning("stream ended: the client read nothing for %.1f s", seconds)
        self._end_unread(context, IDLE_TEXT.format(seconds=seconds))
        self._metrics.idle_streams.inc()

    def _end_slow(self, context: grpc.aio.ServicerContext) -> None:
        # As in _end_idle, the status details carry the message.
        seconds = self._limits.slow_reader_seconds
        log.warning("stream ended: the client fell %.1f s behind real-time playback", seconds)
        self._end_unread(context, SLOW_TEXT.format(seconds=seconds))
        self._metrics.slow_readers.inc()

    def _end_unread(self, context: grpc.aio.ServicerContext, text: str) -> None:
        context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
        context.set_details(text)
        self._metrics.errors.labels(grpc.StatusCode.DEADLINE_EXCEEDED.name).inc()
