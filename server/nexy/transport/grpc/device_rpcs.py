"""The RPCs around a turn: InterruptSession, GenerateWelcomeAudio and ReportUsage."""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property

import grpc

from nexy.config import LimitsSettings
from nexy.events import AudioChunk
from nexy.limits import AdmissionError, DeviceLimits
from nexy.transport.grpc import codec
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc.idle_writes import ClientIdle, IdleWrites
from nexy.transport.grpc.requests import (
    RequestError,
    check_hardware_id,
    parse_usage_request,
    parse_welcome_request,
)
from nexy.turn.tracker import TurnTracker
from nexy.turn.welcome import WelcomeSpeaker
from nexy.usage import UsageSink

log = logging.getLogger(__name__)

UNAVAILABLE_TEXT = "speech synthesis is unavailable"
WELCOME_BUSY_TEXT = (
    "WELCOME_LIMIT_EXCEEDED: {limit} greetings are being synthesized already; try again in a moment"
)


def usage_limits(limits: LimitsSettings) -> DeviceLimits:
    """The device token bucket of COMMITs, sized for ReportUsage and without turn quotas."""
    bucket = {
        "device_requests_per_minute": limits.usage_reports_per_minute,
        "device_burst": limits.usage_burst,
        "daily_turns": 0,
        "weekly_turns": 0,
        "monthly_turns": 0,
    }
    return DeviceLimits(limits.model_copy(update=bucket))


class DeviceRpcs(IdleWrites):
    """The unary and welcome RPCs; the servicer provides the attributes below."""

    _tracker: TurnTracker
    _welcome: WelcomeSpeaker
    _usage: UsageSink

    @cached_property
    def _welcome_slots(self) -> asyncio.Semaphore:
        # Uncached greetings share the voice engines with every turn: a flood of them would
        # queue inside the engine, time out there and open the TTS breaker for everyone.
        return asyncio.Semaphore(self._limits.max_concurrent_welcome)

    @cached_property
    def _usage_limits(self) -> DeviceLimits:
        # Built on first use from the servicer's limits: the constructor needs no new argument.
        return usage_limits(self._limits)

    async def InterruptSession(  # noqa: N802
        self, request: pb.InterruptRequest, context: grpc.aio.ServicerContext
    ) -> pb.InterruptResponse:
        try:
            hardware_id = check_hardware_id(request.hardware_id)
        except RequestError as exc:
            return pb.InterruptResponse(success=False, message=str(exc))
        sessions = await self._tracker.interrupt(hardware_id)
        message = f"interrupted {len(sessions)} turn(s)" if sessions else "no active turn"
        return pb.InterruptResponse(success=True, interrupted_sessions=sessions, message=message)

    async def GenerateWelcomeAudio(  # noqa: N802
        self, request: pb.WelcomeRequest, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            await self._welcome_audio(request, context)
        except ClientIdle:
            self._end_idle(context)

    async def _welcome_audio(
        self, request: pb.WelcomeRequest, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            call = parse_welcome_request(request, self._limits)
        except RequestError as exc:
            await self._welcome_fail(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return
        audio = self._welcome.cached(call.text, call.voice, call.language)
        self._metrics.welcome.labels("hit" if audio else "miss").inc()
        if audio is None:
            if self._welcome_slots.locked():
                self._metrics.rejections.labels("welcome_limit").inc()
                busy = WELCOME_BUSY_TEXT.format(limit=self._limits.max_concurrent_welcome)
                await self._welcome_fail(context, grpc.StatusCode.RESOURCE_EXHAUSTED, busy)
                return
            try:
                async with self._welcome_slots:
                    audio = await self._welcome.speak(call.text, call.voice, call.language)
            except Exception as exc:  # stage boundary: engine failure → a clear status
                log.warning("welcome synthesis failed: %s", type(exc).__name__)
                await self._welcome_fail(context, grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_TEXT)
                return
        metadata = codec.welcome_metadata(audio.method, audio.duration_sec, audio.sample_rate)
        await self._write(context, metadata)
        for chunk in audio.chunks:
            message = codec.audio_message(AudioChunk(chunk, audio.sample_rate))
            await self._write(context, pb.WelcomeResponse(audio_chunk=message))
        await self._write(context, pb.WelcomeResponse(end_message="completed"))

    async def _welcome_fail(
        self, context: grpc.aio.ServicerContext, status: grpc.StatusCode, message: str
    ) -> None:
        await self._write(context, pb.WelcomeResponse(error_message=message))
        context.set_code(status)
        context.set_details(message)
        self._metrics.errors.labels(status.name).inc()

    async def ReportUsage(  # noqa: N802
        self, request: pb.UsageRequest, context: grpc.aio.ServicerContext
    ) -> pb.UsageResponse:
        try:
            record = parse_usage_request(request)
        except RequestError as exc:
            self._metrics.usage_reports.labels("invalid").inc()
            return pb.UsageResponse(success=False, message=str(exc))
        try:
            await self._usage_limits.check(record.hardware_id)
        except AdmissionError as exc:
            self._metrics.usage_reports.labels("rate_limited").inc()
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message)
        await self._usage.record(record)
        self._metrics.usage_reports.labels("stored").inc()
        return pb.UsageResponse(success=True, message="recorded")
