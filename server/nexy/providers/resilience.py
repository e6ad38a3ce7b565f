"""Resilience written once for every provider: timeouts, circuit breakers and ordered fallback.

``FallbackLLM`` and ``FallbackTTS`` are thin adapters over ``FallbackChain``; they implement the
same provider Protocol as their members, so the turn pipeline never knows a chain is there.

What a timeout can see. A provider is a plain async generator: its first ``__anext__`` covers
connecting, sending the request and the model producing its first output, and nothing from
outside can tell those apart. So ``first_output_seconds`` bounds the first item (connecting
included) and ``total_seconds`` the whole stream. ``connect_seconds`` cannot be enforced here;
a provider with a real connect step applies it to its own transport (e.g. aiohttp's
``sock_connect``) and raises, and the chain then hands over at once instead of after the
first-output limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from nexy.components import READY, Component, ComponentStatus, State
from nexy.config import BreakerSettings, TimeoutSettings
from nexy.providers.wait_watch import WaitWatch

log = logging.getLogger(__name__)

T = TypeVar("T")

LatencyHook = Callable[[str, float], None]

_ERROR_TEXT_MAX = 160  # last_error is shown on /status; a vendor's whole traceback is not


class BreakerState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; allows one trial call after the reset."""

    def __init__(
        self, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or reset_seconds <= 0:
            raise ValueError(
                f"need failures >= 1 and reset_seconds > 0: {failures}, {reset_seconds}"
            )
        self.failures = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial = False  # a half-open trial call is in flight

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker reads half-open once the reset time has passed."""
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_seconds
        ):
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go ahead now; in half-open, only one trial call at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial:
            return False
        self._state = BreakerState.HALF_OPEN
        self._trial = True
        return True

    def success(self) -> None:
        """A call succeeded: the provider answers again, so close."""
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._trial = False

    def failure(self) -> None:
        """A call failed: count it; a failed trial re-opens for another full reset period."""
        self._trial = False
        state = self.state
        if state is BreakerState.OPEN:
            return  # a late failure from a call started earlier; the reset timer keeps running
        self._consecutive += 1
        if state is BreakerState.HALF_OPEN or self._consecutive >= self.failures:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()

    def release(self) -> None:
        """A call ended without a verdict (the consumer stopped first): free the trial slot."""
        self._trial = False


async def guarded_stream(
    source: AsyncGenerator[T, None],
    timeouts: TimeoutSettings,
    *,
    what: str,
    error: type[Exception],
) -> AsyncGenerator[T, None]:
    """``source`` with first-output and total time limits; each expiry raises ``error``.

    Only time spent waiting for ``source`` counts towards ``total_seconds``: while the consumer
    holds an item (a full queue ahead, speech still playing) the provider is not at fault.
    ``source`` is always closed, on success, failure, timeout, cancellation or early close.
    """
    spent = 0.0
    first = True
    loop = asyncio.get_running_loop()
    watch = WaitWatch()  # one timer for the whole stream, not one per item
    try:
        while True:
            remaining = timeouts.total_seconds - spent
            limit = min(remaining, timeouts.first_output_seconds) if first else remaining
            began = loop.time()
            watch.begin(limit)
            try:
                item = await anext(source)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not watch.expired():
                    raise  # cancelled by someone else: the turn, a barge-in
                if first and limit < remaining:
                    raise error(
                        f"{what}: no output within {timeouts.first_output_seconds:g} s"
                    ) from None
                raise error(f"{what}: over {timeouts.total_seconds:g} s in total") from None
            finally:
                watch.end()
            spent += loop.time() - began
            first = False
            yield item
    finally:
        watch.close()
        await source.aclose()


# What operators read on /status, in words that need no circuit-breaker vocabulary
# (docs/OPERATIONS.md explains them): "tripped" = paused after failures in a row, skipped
# until the pause ends; "testing" = the pause is over and the next call decides.
HEALTHY, TRIPPED, TESTING, DOWN = "healthy", "tripped", "testing", "down"
_PLAIN_STATES = {
    BreakerState.CLOSED: HEALTHY,
    BreakerState.OPEN: TRIPPED,
    BreakerState.HALF_OPEN: TESTING,
}


@dataclass(frozen=True, slots=True)
class ProviderStats:
    """One chain member as /status, /ready and /metrics see it.

    ``state`` is "healthy", "tripped" or "testing" (its breaker), or "down" when the member
    failed to start or reports itself down; ``last_latency_ms`` is its last time to first output.
    """

    name: str
    state: str
    calls: int
    failures: int
    last_error: str
    last_latency_ms: float | None

    @property
    def available(self) -> bool:
        """Whether the chain may call this member now."""
        return self.state not in (TRIPPED, DOWN)


class _Named(Protocol):
    name: str


P = TypeVar("P", bound=_Named)


class _Member(Generic[P]):
    """A provider plus its breaker and counters."""

    def __init__(self, provider: P, breaker: CircuitBreaker) -> None:
        self.provider = provider
        self.breaker = breaker
        self.calls = 0
        self.failures = 0
        self.last_error = ""
        self.last_latency_ms: float | None = None
        self.start_error = ""

    def down_reason(self) -> str:
        """Why the member cannot be called at all now; empty when it can."""
        if self.start_error:
            return self.start_error
        provider = self.provider
        status = provider.status() if isinstance(provider, Component) else READY
        return (status.reason or "down") if status.state is State.DOWN else ""

    def problem(self) -> tuple[str, bool]:
        """What is wrong with the member (empty if nothing) and whether it can still answer."""
        name, down = self.provider.name, self.down_reason()
        if down:
            return f"{name} is down ({down})", False
        if self.breaker.state is BreakerState.OPEN:
            return f"{name} is tripped after repeated failures ({self.last_error})", False
        provider = self.provider
        own = provider.status() if isinstance(provider, Component) else READY
        return (f"{name}: {own.reason}" if own.state is State.DEGRADED else ""), True

    def failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        self.breaker.failure()

    def stats(self) -> ProviderStats:
        state = DOWN if self.down_reason() else _PLAIN_STATES[self.breaker.state]
        last_error = self.start_error or self.last_error
        return ProviderStats(
            self.provider.name, state, self.calls, self.failures, last_error, self.last_latency_ms
        )


class FallbackChain(Generic[P]):
    """Ordered members with breakers: lifecycle, hand-over before output, and statistics."""

    def __init__(
        self,
        providers: Sequence[P],
        timeouts: TimeoutSettings,
        breaker: BreakerSettings,
        *,
        error: type[Exception],
        unavailable: str,
        on_latency: LatencyHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.members = [
            _Member(p, CircuitBreaker(breaker.failures, breaker.reset_seconds, clock))
            for p in providers
        ]
        self.timeouts = timeouts
        self.error = error
        self.unavailable = unavailable  # the message when every member fails before output
        self.on_latency = on_latency
        self._started: list[_Member[P]] = []
        self._running = False
        self._closed = False

    @property
    def name(self) -> str:
        """Members in the order they are tried: ``"a>b>c"``."""
        return ">".join(member.provider.name for member in self.members)

    async def start(self) -> None:
        """Start every member; a failure marks that one down, and only all failing is fatal."""
        if self._running:
            return
        self._closed = False
        for member in self.members:
            member.start_error = ""
            provider = member.provider
            try:
                if isinstance(provider, Component):
                    await provider.start()
            except Exception as exc:  # any start failure leaves the member down, not the chain
                member.start_error = _short(exc, self.error)
                log.warning("%s is down: %s", provider.name, member.start_error)
                continue
            self._started.append(member)
        self._running = True
        if not self._started:
            reasons = "; ".join(f"{m.provider.name}: {m.start_error}" for m in self.members)
            await self.close()
            raise self.error(f"no provider in {self.name} could start ({reasons})")

    def status(self) -> ComponentStatus:
        """DOWN when no member can answer now; DEGRADED naming the members that cannot."""
        if not self._running:
            return ComponentStatus(State.DOWN, "closed" if self._closed else "not started")
        checks = [member.problem() for member in self.members]
        problems = "; ".join(text for text, _ in checks if text)
        if not any(usable for _, usable in checks):
            return ComponentStatus(State.DOWN, problems)
        return ComponentStatus(State.DEGRADED, problems) if problems else READY

    async def close(self) -> None:
        """Close every started member, last first (idempotent); one failure does not stop it."""
        while self._started:
            provider = self._started.pop().provider
            try:
                if isinstance(provider, Component):
                    await provider.close()
            except Exception as exc:  # closing must reach every member
                log.error("closing %s failed: %s", provider.name, type(exc).__name__)
        self._running = False
        self._closed = True

    def stats(self) -> list[ProviderStats]:
        """A snapshot per member, in chain order."""
        return [member.stats() for member in self.members]

    async def stream(
        self, open_stream: Callable[[P], AsyncGenerator[T, None]]
    ) -> AsyncGenerator[T, None]:
        """The first member that produces output; failures before output hand over invisibly."""
        for member in self.members:
            if member.down_reason() or not member.breaker.allow():
                continue  # skipped without being called: no time lost on a known-bad member
            name = member.provider.name
            member.calls += 1
            produced = False
            began = time.monotonic()
            try:
                source = guarded_stream(
                    open_stream(member.provider), self.timeouts, what=name, error=self.error
                )
                async with aclosing(source) as items:
                    async for item in items:
                        if not produced:
                            produced = True
                            self._first_output(member, time.monotonic() - began)
                        yield item
            except Exception as exc:  # any member failure: hand over, or report it after output
                member.failed(_short(exc, self.error))
                if produced:
                    if isinstance(exc, self.error):
                        raise
                    raise self.error(f"{name} failed: {type(exc).__name__}") from exc
                log.warning("%s failed before output, trying the next: %s", name, member.last_error)
                continue
            except BaseException:
                # The consumer stopped (closed or cancelled): no verdict on a silent member,
                # and the next member is not started for a consumer that has gone.
                if produced:
                    member.breaker.success()
                else:
                    member.breaker.release()
                raise
            member.breaker.success()
            return
        raise self.error(self.unavailable)

    def _first_output(self, member: _Member[P], seconds: float) -> None:
        member.last_latency_ms = seconds * 1000
        if self.on_latency is None:
            return
        try:
            self.on_latency(member.provider.name, seconds)
        except Exception as exc:  # a metrics hook must never break a reply
            log.error("latency hook failed: %s", type(exc).__name__)


def _short(exc: BaseException, translated: type[Exception]) -> str:
    """``"Type: message"`` cut to fit a status page; only the type for a raw vendor exception.

    Provider errors (``translated``) are already worded for us; any other exception's text may
    carry URLs, paths or keys, and /status is not behind the log's secret masking.
    """
    if not isinstance(exc, translated) or not str(exc):
        return type(exc).__name__
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _ERROR_TEXT_MAX else text[: _ERROR_TEXT_MAX - 1] + "…"
