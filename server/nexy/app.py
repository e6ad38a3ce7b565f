"""Composition root: settings → components → turn machinery → gRPC and HTTP servers."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web

from nexy.components import Registry
from nexy.config import Settings
from nexy.memory.hooks import InProcessMemory, MemoryHooks
from nexy.metrics import Metrics
from nexy.providers.factory import build_llm, build_tts
from nexy.providers.llm.base import LLMProvider
from nexy.providers.tts.base import TTSProvider
from nexy.transport.grpc.server import GrpcServer
from nexy.transport.grpc.servicer import StreamingServicer
from nexy.transport.http.routes import HttpContext, build_http_app
from nexy.turn.actions import ActionPolicy
from nexy.turn.collect import CollectStore
from nexy.turn.prompt import system_prompt
from nexy.turn.runner import TurnRunner
from nexy.turn.tracker import TurnTracker
from nexy.turn.welcome import WelcomeSpeaker
from nexy.usage import MemoryUsageSink, UsageSink

log = logging.getLogger(__name__)


class NexyApp:
    """One server process: build with settings (providers injectable for tests), start, stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm: LLMProvider | None = None,
        tts: TTSProvider | None = None,
        usage: UsageSink | None = None,
        memory: MemoryHooks | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.registry = Registry()
        self.memory = memory or InProcessMemory()
        self.llm = llm or build_llm(settings, self.memory)
        self.tts = tts or build_tts(settings)
        self.usage = usage or MemoryUsageSink()
        self.registry.register("memory", self.memory)
        self.registry.register("llm", self.llm)
        self.registry.register("tts", self.tts)
        self.registry.register("usage", self.usage)
        self.tracker = TurnTracker(settings.limits.max_concurrent_turns)
        self.policy = ActionPolicy(settings.actions)
        self.runner = TurnRunner(
            llm=self.llm,
            tts=self.tts,
            policy=self.policy,
            system_prompt=system_prompt(settings.actions.groups, settings.llm.system_prompt),
            turn=settings.turn,
            tts_settings=settings.tts,
            default_language=settings.welcome.language,
        )
        limits = settings.limits
        self.collect = CollectStore(
            limits.collect_ttl_seconds, limits.collect_max_buffers, limits.collect_max_bytes
        )
        self.welcome = WelcomeSpeaker(
            self.tts,
            default_text=settings.welcome.text,
            default_language=settings.welcome.language,
            sample_rate=settings.tts.sample_rate,
            chunk_ms=settings.tts.chunk_ms,
            cache_entries=settings.welcome.cache_entries,
        )
        servicer = StreamingServicer(
            limits=limits,
            runner=self.runner,
            tracker=self.tracker,
            collect=self.collect,
            welcome=self.welcome,
            usage=self.usage,
            metrics=self.metrics,
        )
        self.grpc = GrpcServer(settings.server, servicer)
        self.http_context = HttpContext(self.registry, self.tracker, self.metrics, time.monotonic())
        self._http_runner: web.AppRunner | None = None
        self.grpc_port = 0
        self.http_port = 0

    async def start(
        self, host: str | None = None, grpc_port: int | None = None, http_port: int | None = None
    ) -> None:
        """Start components, then the servers (ports default to the settings; 0 = any free)."""
        server = self.settings.server
        host = host or server.host
        await self.registry.start_all()
        await self._warm_greeting()
        self.grpc_port = await self.grpc.start(
            host, server.grpc_port if grpc_port is None else grpc_port
        )
        self._http_runner = web.AppRunner(build_http_app(self.http_context), access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(
            self._http_runner, host, server.http_port if http_port is None else http_port
        )
        await site.start()
        self.http_port = self._bound_http_port()
        self.http_context.grpc_port, self.http_context.http_port = self.grpc_port, self.http_port
        log.info(
            "nexy serving gRPC on %s:%d and HTTP on %s:%d",
            host,
            self.grpc_port,
            host,
            self.http_port,
        )

    async def _warm_greeting(self) -> None:
        """Synthesize the default greeting now: the client waits only ~5 s for it at startup."""
        try:
            await self.welcome.speak("", "", "")
        except Exception as exc:  # a cold greeting later is slower, not broken
            log.warning("greeting pre-synthesis failed: %s", type(exc).__name__)

    def _bound_http_port(self) -> int:
        assert self._http_runner is not None
        for address in self._http_runner.addresses:
            if isinstance(address, tuple):
                return int(address[1])
        return 0

    async def stop(self) -> None:
        """Stop accepting, give running turns the grace period, then close components."""
        self.http_context.accepting = False
        await self.grpc.stop(self.settings.server.shutdown_grace_seconds)
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        await self.registry.close_all()

    async def serve_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        await self.stop()
