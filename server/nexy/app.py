"""Composition root: settings → components → turn machinery → gRPC and HTTP servers."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from nexy.components import Registry
from nexy.config import Settings
from nexy.coordination import build_coordination
from nexy.limits import DeviceLimiter
from nexy.memory.analyzer import LLMAnalyzer
from nexy.memory.service import MemoryService
from nexy.metrics import Metrics
from nexy.providers.factory import build_llm_chain, build_tts, can_analyse_memory, with_intents
from nexy.providers.llm.base import LLMProvider
from nexy.providers.llm.chain import FallbackLLM
from nexy.providers.resilience import ProviderStats
from nexy.providers.tts.base import TTSProvider
from nexy.providers.tts.chain import FallbackTTS
from nexy.storage import Database, Outbox, Repository
from nexy.transport.grpc.server import GrpcServer, rpc_limit
from nexy.transport.grpc.servicer import StreamingServicer
from nexy.transport.http.playground import Playground, playground_enabled, playground_routes
from nexy.transport.http.routes import HttpContext, build_http_app
from nexy.transport.http.slow_clients import KEEPALIVE_SECONDS, GuardedSite
from nexy.turn.actions import ActionPolicy
from nexy.turn.collect import CollectStore
from nexy.turn.journal import TurnJournal
from nexy.turn.prompt import system_prompt
from nexy.turn.runner import TurnRunner
from nexy.turn.tracker import SHUTDOWN, TurnTracker
from nexy.turn.welcome import WelcomeSpeaker
from nexy.updates import UpdateFeed

log = logging.getLogger(__name__)

# After the grace period: how long interrupted turns (and other calls) get for their last
# message and record before the gRPC server cancels what is left.
_LAST_WORDS_SECONDS = 2.0


def _http_tls(settings: Settings) -> ssl.SSLContext | None:
    """The HTTP side of `tls.cert_file`/`tls.key_file` (gRPC reads the same files)."""
    tls = settings.tls
    if tls.cert_file is None or tls.key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _operator_tokens(settings: Settings) -> tuple[bytes, ...] | None:
    """Tokens that unlock /status details: the unbound ones (device tokens do not)."""
    if not settings.auth.enabled:
        return None
    return tuple(
        t.get_secret_value().encode() for t in settings.auth.tokens if t.get_secret_value()
    )


def _infrastructure_names(settings: Settings) -> tuple[str, ...]:
    """Host names of the database, Redis and model endpoints, kept out of public /status."""
    urls = (
        settings.storage.url.get_secret_value(),
        settings.coordination.redis_url.get_secret_value(),
        settings.llm.openai.base_url,
        settings.llm.gemini.base_url,
    )
    hosts = {urlsplit(url).hostname or "" for url in urls if "://" in url}
    # Dotted names only: a bare service name such as "redis" says little and is also a word
    # the reasons use; addresses with a port are redacted by pattern anyway.
    return tuple(sorted(host for host in hosts if "." in host))


def _chain(provider: object) -> object:
    """The fallback chain inside a provider (the intent path wraps the LLM chain)."""
    return getattr(provider, "inner", provider)


class NexyApp:
    """One server process: build with settings (providers injectable for tests), start, stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm: LLMProvider | None = None,
        tts: TTSProvider | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.registry = Registry()
        model = llm or build_llm_chain(settings)
        # A cloud model also turns what the user said into memory facts (off the hot path).
        analysis_model = model if llm is None and can_analyse_memory(settings) else None
        self._build_storage(settings, analysis_model)
        self.llm = model if llm is not None else with_intents(model, settings, self.memory)
        self.tts = tts or build_tts(settings)
        self.journal = TurnJournal(self.outbox, self.memory)
        # Start order; close runs in reverse, so the journal drains into the outbox, which
        # flushes into the database, before the database closes.
        for capability, component in (
            ("storage", self.database),
            ("outbox", self.outbox),
            ("memory", self.memory),
            ("llm", self.llm),
            ("tts", self.tts),
            ("journal", self.journal),
        ):
            self.registry.register(capability, component)
        self.updates: UpdateFeed | None = None
        if settings.updates.enabled:
            self.updates = UpdateFeed(settings.updates)
            # Optional: a broken updates folder must not stop the voice service.
            self.registry.register("updates", self.updates, required=False)
        # Redis when configured (cluster-wide), else in-process; see docs/SCALING.md.
        self.coordination = build_coordination(settings.coordination, settings.limits)
        # Optional: with Redis away each replica coordinates its own turns (degraded).
        self.registry.register("coordination", self.coordination, required=False)
        self.device_limits: DeviceLimiter = self.coordination.limiter
        self.tracker = TurnTracker(
            settings.limits.max_concurrent_turns,
            max_turns_per_device=settings.limits.max_turns_per_device,
            device_limits=self.device_limits,
            coordination=self.coordination,
            max_turns_per_connection=settings.limits.max_turns_per_connection,
            max_turns_per_address=settings.limits.max_turns_per_address,
        )
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
            settings.welcome,
            sample_rate=settings.tts.sample_rate,
            chunk_ms=settings.tts.chunk_ms,
        )
        servicer = self.servicer = StreamingServicer(
            limits=limits,
            runner=self.runner,
            tracker=self.tracker,
            collect=self.collect,
            welcome=self.welcome,
            usage=self.outbox,
            memory=self.memory,
            journal=self.journal,
            metrics=self.metrics,
        )
        self.grpc = GrpcServer(
            settings.server,
            servicer,
            metrics=self.metrics,
            auth=settings.auth,
            tls=settings.tls,
            max_concurrent_rpcs=rpc_limit(settings.limits),
        )
        advertised = (
            "max_concurrent_turns",
            "max_turns_per_device",
            "device_requests_per_minute",
            "device_burst",
            "daily_turns",
            "weekly_turns",
            "monthly_turns",
            "idle_timeout_seconds",
            "slow_reader_seconds",
            "max_turns_per_connection",
            "max_turns_per_address",
            "max_prompt_chars",
            "max_screenshot_bytes",
            "max_welcome_chars",
        )
        self.http_context = HttpContext(
            self.registry,
            self.tracker,
            self.metrics,
            time.monotonic(),
            self.provider_stats,
            {name: getattr(settings.limits, name) for name in advertised},
            updates=self.updates,
            operator_tokens=_operator_tokens(settings),
            hidden_names=_infrastructure_names(settings),
        )
        self.metrics.track_providers(self.provider_stats)
        self.metrics.track_outbox(self.outbox.stats)
        for kind, chain in (("llm", _chain(self.llm)), ("tts", _chain(self.tts))):
            if isinstance(chain, FallbackLLM | FallbackTTS):
                chain.on_latency = self._latency_hook(kind)
        self._http_runner: web.AppRunner | None = None
        self.grpc_port = 0
        self.http_port = 0

    def _build_storage(self, settings: Settings, analysis_model: LLMProvider | None) -> None:
        storage, memory = settings.storage, settings.memory
        self.database = Database(
            storage.url.get_secret_value(),
            auto_migrate=storage.auto_migrate,
            echo=storage.echo,
            schema=storage.schema_name,
        )
        self.repository = Repository(self.database)
        self.outbox = Outbox(
            self.repository,
            storage.outbox_path,
            retry_initial=storage.retry_initial_seconds,
            retry_max=storage.retry_max_seconds,
            close_timeout=storage.close_timeout_seconds,
            probe=self.database.ping,
            max_attempts=storage.max_attempts,
        )
        analyzer = None
        if analysis_model is not None:
            analyzer = LLMAnalyzer(analysis_model, usage=self.outbox)
        self.memory = MemoryService(
            self.repository,
            self.outbox,
            read_budget_s=memory.read_budget_ms / 1000,
            max_facts=memory.max_facts,
            max_recent=memory.max_recent,
            llm_analyzer=analyzer,
        )

    def provider_stats(self) -> dict[str, list[ProviderStats]]:
        """Each provider chain's members: state, calls, failures, latency."""
        found: dict[str, list[ProviderStats]] = {}
        for kind, provider in (("llm", self.llm), ("tts", self.tts)):
            chain = _chain(provider)
            if isinstance(chain, FallbackLLM | FallbackTTS):
                found[kind] = chain.stats()
        return found

    def _latency_hook(self, kind: str) -> Callable[[str, float], None]:
        histogram = self.metrics.provider_first_output
        return lambda name, seconds: histogram.labels(kind, name).observe(seconds)

    async def settle(self) -> None:
        """Wait until every finished turn and queued write has reached the database."""
        await self.journal.drain()
        await self.memory.drain()  # a model's analysis may queue more writes
        while self.outbox.pending():  # noqa: ASYNC110 - the outbox has no "empty" event
            await asyncio.sleep(0.01)

    async def start(
        self, host: str | None = None, grpc_port: int | None = None, http_port: int | None = None
    ) -> None:
        """Start components, then the servers (ports default to the settings; 0 = any free)."""
        server = self.settings.server
        host = host or server.host
        await self.registry.start_all()
        await self._warm_greeting()
        # Everything loaded so far (models, stubs, caches) lives as long as the process: keep it
        # out of the collector's sweeps, which otherwise pause every stream ~100 ms under load.
        gc.collect()
        gc.freeze()
        try:
            await self._listen(host, grpc_port, http_port)
        except BaseException:
            # A busy port must not leave the models, the outbox and Redis open behind it.
            await self.grpc.stop(0)
            if self._http_runner is not None:
                await self._http_runner.cleanup()
            await self.registry.close_all()
            raise
        self.http_context.grpc_port, self.http_context.http_port = self.grpc_port, self.http_port
        log.info(
            "nexy serving gRPC on %s:%d and HTTP on %s:%d",
            host,
            self.grpc_port,
            host,
            self.http_port,
        )

    async def _listen(self, host: str, grpc_port: int | None, http_port: int | None) -> None:
        """Bind gRPC, then HTTP (slow-client guard, playground if on); name the update feed."""
        server = self.settings.server
        self.grpc_port = await self.grpc.start(
            host, server.grpc_port if grpc_port is None else grpc_port
        )
        http_app = build_http_app(self.http_context)
        if playground_enabled(server.playground, host):
            playground = Playground(self.servicer, self.memory, self.settings, host)
            http_app.add_routes(playground_routes(playground))
            self.http_context.playground = True
        self._http_runner = web.AppRunner(
            http_app, access_log=None, keepalive_timeout=KEEPALIVE_SECONDS
        )
        await self._http_runner.setup()
        tls = _http_tls(self.settings)
        site = GuardedSite(
            self._http_runner,
            host,
            server.http_port if http_port is None else http_port,
            timeout=server.http_request_timeout_seconds,
            ssl_context=tls,
        )
        await site.start()
        self.http_port = self._bound_http_port()
        if self.updates is not None:
            self.updates.serve_at("https" if tls else "http", host, self.http_port)

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
        """Stop accepting, give running turns the grace period, then close components.

        Turns still running when the grace period ends are told "the server is shutting down"
        (UNAVAILABLE) and recorded as interrupted by their own handlers, before the gRPC server
        stops: a stream never just breaks off. Then the journal drains into the outbox.
        """
        self.http_context.accepting = False
        self.tracker.stop_admitting()
        await self.grpc.set_serving(False)
        if not await self.tracker.wait_idle(self.settings.server.shutdown_grace_seconds):
            count = self.tracker.interrupt_all(SHUTDOWN)
            self.metrics.shutdown_interrupts.inc(count)
            log.warning("grace period over: interrupting %d running turns", count)
            await self.tracker.wait_idle(_LAST_WORDS_SECONDS)
        await self.grpc.stop(_LAST_WORDS_SECONDS)
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
