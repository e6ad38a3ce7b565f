"""The replica's Redis connection: every call bounded in time, every failure part of one outage.

While an outage lasts, calls are not even attempted (``Unavailable`` at once): a turn must not wait
``operation_timeout_seconds`` on every admission for a Redis that is known to be gone. Only the
backend's background loops probe it, and the first success ends the outage. Each outage logs one
warning when it starts and one info line when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.retry import Retry

log = logging.getLogger(__name__)

# What a lost, refused, slow or broken Redis raises through redis.asyncio.
FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class Unavailable(Exception):
    """Redis cannot be used right now; the caller falls back to per-replica behaviour."""


class RedisStore:
    """A client, its scripts and the outage state shared by all users of the connection."""

    def __init__(self, url: str, key_prefix: str, timeout: float) -> None:
        self.prefix = key_prefix
        self.timeout = timeout
        self._secret = urlsplit(url).password or ""
        # One immediate retry replaces a pooled connection that went stale (Redis restarted, an
        # outage cut it) instead of reporting a new outage; ``run`` bounds both tries together.
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # Subscribers get their own client: it has no read timeout, since it waits for news.
        self._subscriber: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.down_reason: str | None = None
        self.outages = 0
        self.went_down = asyncio.Event()  # wakes the prober as soon as an outage starts

    @property
    def available(self) -> bool:
        return self.down_reason is None

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def script(self, source: str) -> AsyncScript:
        return self.client.register_script(source)

    def pubsub(self) -> PubSub:
        """A fresh subscriber (a new one after each disconnect); the caller closes it."""
        return self._subscriber.pubsub()

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script within the time bound, or raise Unavailable (and start an outage)."""
        if self.down_reason is not None:
            raise Unavailable(self.down_reason)
        try:
            async with asyncio.timeout(self.timeout):
                return await script(keys=list(keys), args=list(args))
        except FAILURES as exc:
            self.failed(exc)
            raise Unavailable(self.down_reason) from exc

    async def probe(self) -> bool:
        """One bounded PING; ends the outage when it answers."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.ping()
        except FAILURES as exc:
            self.failed(exc)
            return False
        self.recovered()
        return True

    def failed(self, exc: BaseException) -> None:
        reason = self.describe(exc)
        if self.down_reason is None:
            self.outages += 1
            log.warning(
                "redis is unreachable (%s): each replica coordinates only its own turns "
                "until it is back",
                reason,
            )
        self.down_reason = reason
        self.went_down.set()

    def recovered(self) -> None:
        if self.down_reason is not None:
            log.info("redis is reachable again: coordination is cluster-wide")
        self.down_reason = None
        self.went_down.clear()

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError) and not str(exc):
            text = f"no answer within {self.timeout:g} s"
        else:
            text = f"{type(exc).__name__}: {exc}"
        # Status reasons leave the process (/status); logs are masked, this text must be too.
        return text.replace(self._secret, "***") if self._secret else text

    async def close(self) -> None:
        await self._subscriber.aclose()
        await self.client.aclose()
