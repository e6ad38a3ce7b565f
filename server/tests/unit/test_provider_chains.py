"""Tests for the fallback chains: FallbackLLM and FallbackTTS over small fake providers."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable

import numpy as np
import pytest

from nexy.components import READY, ComponentStatus, State
from nexy.config import BreakerSettings, TimeoutSettings
from nexy.providers.llm.base import Image, LLMError, LLMProvider, LLMRequest, TokenMeter
from nexy.providers.llm.chain import FallbackLLM
from nexy.providers.tts.base import TTSError, TTSProvider, Voice
from nexy.providers.tts.chain import FallbackTTS

TIMEOUTS = TimeoutSettings(connect_seconds=0.05, first_output_seconds=0.3, total_seconds=2.0)
BREAKER = BreakerSettings(failures=3, reset_seconds=10.0)
REQUEST = LLMRequest(system="s", user="u", prompt="p")


class Clock:
    """A clock the test moves by hand (for the breakers)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Lifecycle:
    """start/status/close like a real provider; ``fail="start"`` rejects the start."""

    fail = ""

    def __init__(self) -> None:
        self._status = ComponentStatus(State.DOWN, "not started")
        self.closes = 0

    async def start(self) -> None:
        if self.fail == "start":
            self._status = ComponentStatus(State.DOWN, "no key")
            raise RuntimeError("no key")
        self._status = READY

    def status(self) -> ComponentStatus:
        return self._status

    async def close(self) -> None:
        self.closes += 1
        self._status = ComponentStatus(State.DOWN, "closed")


class FakeLLM(Lifecycle):
    """fail: "" | "before" | "after" | "start"; delay: before the first fragment (inf: hang)."""

    def __init__(
        self, name: str, *, fail: str = "", delay: float = 0.0, images: bool = True
    ) -> None:
        super().__init__()
        self.name, self.fail, self.delay, self.supports_images = name, fail, delay, images
        self.calls = 0
        self.closed = 0
        self.requests: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        self.calls += 1
        self.requests.append(request)
        try:
            if self.fail == "before":
                raise ConnectionRefusedError("unreachable")
            await (
                asyncio.Event().wait() if self.delay == float("inf") else asyncio.sleep(self.delay)
            )
            yield f"{self.name}:hello"
            if self.fail == "after":
                raise ConnectionResetError("reset")
            yield " world"
            request.meter.add(10, 2, model=self.name)
        finally:
            self.closed += 1


async def ask(llm: LLMProvider, request: LLMRequest = REQUEST) -> str:
    return "".join([fragment async for fragment in llm.stream(request)])


async def started(
    *members: FakeLLM,
    breaker: BreakerSettings = BREAKER,
    clock: Clock | None = None,
    on_latency: Callable[[str, float], None] | None = None,
) -> FallbackLLM:
    chain = FallbackLLM(members, TIMEOUTS, breaker, on_latency=on_latency, clock=clock or Clock())
    await chain.start()
    return chain


# --- FallbackLLM -------------------------------------------------------------------------------


async def test_the_first_member_answers_and_the_rest_are_not_called() -> None:
    a, b = FakeLLM("a"), FakeLLM("b")
    chain = await started(a, b)
    assert chain.name == "a>b"
    assert await ask(chain) == "a:hello world"
    assert (a.calls, b.calls, a.closed) == (1, 0, 1)
    assert chain.status() == READY


async def test_an_unreachable_member_hands_over_invisibly_and_almost_at_once() -> None:
    a, b = FakeLLM("a", fail="before"), FakeLLM("b")
    chain = await started(a, b)
    began = time.monotonic()
    assert await ask(chain) == "b:hello world"
    assert time.monotonic() - began < 0.05
    assert a.closed == 1


async def test_a_hanging_member_hands_over_after_the_first_output_timeout() -> None:
    a, b = FakeLLM("a", delay=float("inf")), FakeLLM("b")
    chain = await started(a, b)
    began = time.monotonic()
    assert await ask(chain) == "b:hello world"
    assert 0.28 <= time.monotonic() - began < 0.45
    assert a.closed == 1  # the hanging request was cancelled, not left running
    assert "no output within 0.3 s" in chain.stats()[0].last_error


async def test_a_member_with_an_open_breaker_is_skipped_until_its_trial() -> None:
    clock = Clock()
    a, b = FakeLLM("a", fail="before"), FakeLLM("b")
    chain = await started(a, b, breaker=BreakerSettings(failures=2, reset_seconds=5), clock=clock)
    for _ in range(3):
        assert await ask(chain) == "b:hello world"
    assert a.calls == 2  # the third turn did not call it at all
    assert [s.state for s in chain.stats()] == ["tripped", "healthy"]
    assert [s.available for s in chain.stats()] == [False, True]
    assert chain.status().state is State.DEGRADED
    assert "a is tripped after repeated failures" in chain.status().reason
    clock.now += 5
    assert chain.stats()[0].state == "testing"  # the pause is over: the next call decides
    a.fail = ""
    assert await ask(chain) == "a:hello world"  # the trial call succeeds and closes it
    assert [s.state for s in chain.stats()] == ["healthy", "healthy"]


async def test_a_failure_after_output_is_an_error_not_a_fallback() -> None:
    a, b = FakeLLM("a", fail="after"), FakeLLM("b")
    chain = await started(a, b)
    fragments: list[str] = []
    with pytest.raises(LLMError, match="a failed: ConnectionResetError") as caught:
        async for fragment in chain.stream(REQUEST):
            fragments.append(fragment)
    assert fragments == ["a:hello"]
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert b.calls == 0
    assert chain.stats()[0].failures == 1


async def test_when_every_member_fails_before_output_the_chain_says_so() -> None:
    chain = await started(FakeLLM("a", fail="before"), FakeLLM("b", fail="before"))
    with pytest.raises(LLMError, match="^all language models are unavailable$"):
        await ask(chain)


async def test_cancelling_the_consumer_closes_the_member_and_starts_no_other() -> None:
    a, b = FakeLLM("a", delay=float("inf")), FakeLLM("b")
    chain = await started(a, b)
    task = asyncio.create_task(ask(chain))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (a.closed, b.calls) == (1, 0)
    assert chain.stats()[0].failures == 0  # the consumer left: no verdict on the member


async def test_an_early_close_after_output_counts_as_an_answer() -> None:
    a = FakeLLM("a")
    chain = await started(a, FakeLLM("b"))
    stream = chain.stream(REQUEST)
    assert await anext(stream) == "a:hello"
    await stream.aclose()
    assert a.closed == 1
    assert chain.stats()[0].failures == 0


async def test_start_failures_degrade_the_chain_and_the_member_is_skipped() -> None:
    a, b = FakeLLM("a", fail="start"), FakeLLM("b")
    chain = await started(a, b)
    assert chain.status() == ComponentStatus(State.DEGRADED, "a is down (RuntimeError)")
    assert await ask(chain) == "b:hello world"
    assert a.calls == 0
    assert chain.stats()[0].state == "down"
    await chain.close()
    await chain.close()  # idempotent
    assert (a.closes, b.closes) == (0, 1)  # only started members are closed
    assert chain.status() == ComponentStatus(State.DOWN, "closed")


async def test_the_chain_fails_to_start_only_when_every_member_does() -> None:
    chain = FallbackLLM([FakeLLM("a", fail="start"), FakeLLM("b", fail="start")], TIMEOUTS, BREAKER)
    with pytest.raises(LLMError, match="no provider in a>b could start"):
        await chain.start()
    assert chain.status().state is State.DOWN


async def test_stats_and_the_latency_hook_report_time_to_first_output() -> None:
    seen: list[tuple[str, float]] = []
    a, b = FakeLLM("a", fail="before"), FakeLLM("b", delay=0.1)
    chain = await started(a, b, on_latency=lambda name, s: seen.append((name, s)))
    await ask(chain)
    assert [name for name, _ in seen] == ["b"] and 0.09 <= seen[0][1] < 0.2
    first, second = chain.stats()
    assert (first.calls, first.failures, first.last_latency_ms) == (1, 1, None)
    assert first.last_error == "ConnectionRefusedError"  # raw vendor text stays off /status
    assert (second.calls, second.failures, second.last_error) == (1, 0, "")
    assert second.last_latency_ms is not None and 90 <= second.last_latency_ms < 200


async def test_a_broken_latency_hook_does_not_break_the_reply() -> None:
    def hook(name: str, seconds: float) -> None:
        raise RuntimeError("prometheus is sad")

    chain = await started(FakeLLM("a"), on_latency=hook)
    assert await ask(chain) == "a:hello world"


async def test_images_follow_the_first_member_and_text_only_fallbacks_get_text() -> None:
    a, b = FakeLLM("a", fail="before", images=True), FakeLLM("b", images=False)
    chain = await started(a, b)
    assert chain.supports_images
    request = LLMRequest(system="s", user="u", prompt="p", image=Image(b"png", "image/png"))
    await ask(chain, request)
    assert a.requests[0].image is not None
    assert b.requests[0].image is None and b.requests[0].user == "u"


async def test_usage_reaches_the_callers_meter_from_the_member_that_answered() -> None:
    # b cannot take images: the chain hands it a copy of the request without the screenshot,
    # and the counts must still reach the meter of the request the caller holds.
    a, b = FakeLLM("a", fail="before"), FakeLLM("b", images=False)
    chain = await started(a, b)
    req = dataclasses.replace(REQUEST, image=Image(b"png", "image/png"), meter=TokenMeter())
    await ask(chain, req)
    assert (req.meter.model, req.meter.input_tokens, req.meter.output_tokens) == ("b", 10, 2)


# --- FallbackTTS -------------------------------------------------------------------------------


class FakeTTS(Lifecycle):
    """A tone engine; fail: "" | "before" | "after" | "start"."""

    def __init__(self, name: str, sample_rate: int, *, fail: str = "", seconds: float = 0.5):
        super().__init__()
        self.name, self.sample_rate, self.fail, self.seconds = name, sample_rate, fail, seconds
        self.calls = 0

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        self.calls += 1
        if self.fail == "before":
            raise TTSError("voice not found")
        t = np.arange(round(self.seconds * self.sample_rate)) / self.sample_rate
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
        step = self.sample_rate // 10 * 2  # 100 ms pieces
        for offset in range(0, len(pcm), step):
            yield pcm[offset : offset + step]
            await asyncio.sleep(0)
            if self.fail == "after":
                raise RuntimeError("engine crashed")


class Router(FakeTTS):
    """A first member with its own per-voice engine choice, like LanguageRouterTTS."""

    def __init__(self, other: TTSProvider) -> None:
        super().__init__("router", 22050)
        self.other = other

    def engine_for(self, voice: Voice) -> TTSProvider:
        return self.other if voice.language == "ru" else self


async def speak(tts: TTSProvider, text: str = "Hello.") -> bytes:
    return b"".join([pcm async for pcm in tts.synthesize(text, Voice("en"))])


async def test_tts_hands_over_before_audio_and_resamples_to_the_first_engines_rate() -> None:
    a, b = FakeTTS("a", 24000, fail="before"), FakeTTS("b", 16000, seconds=0.5)
    chain = FallbackTTS([a, b], TIMEOUTS, BREAKER)
    await chain.start()
    assert (chain.name, chain.sample_rate) == ("a>b", 24000)
    audio = await speak(chain)
    assert len(audio) // 2 == pytest.approx(12000, abs=200)  # 0.5 s at 24 kHz
    assert chain.stats()[0].failures == 1


async def test_tts_at_the_same_rate_passes_audio_through_untouched() -> None:
    a = FakeTTS("a", 22050)
    chain = FallbackTTS([a, FakeTTS("b", 22050)], TIMEOUTS, BREAKER)
    await chain.start()
    assert await speak(chain) == await speak(FakeTTS("x", 22050))


async def test_tts_failure_after_audio_is_a_tts_error() -> None:
    a, b = FakeTTS("a", 22050, fail="after"), FakeTTS("b", 22050)
    chain = FallbackTTS([a, b], TIMEOUTS, BREAKER)
    await chain.start()
    with pytest.raises(TTSError, match="a failed: RuntimeError"):
        await speak(chain)
    assert b.calls == 0


async def test_tts_all_failing_and_empty_text() -> None:
    a, b = FakeTTS("a", 22050, fail="before"), FakeTTS("b", 16000, fail="before")
    chain = FallbackTTS([a, b], TIMEOUTS, BREAKER)
    await chain.start()
    assert await speak(chain, "  ") == b"" and a.calls == 0
    with pytest.raises(TTSError, match="^all speech engines are unavailable$"):
        await speak(chain)


async def test_tts_lifecycle_and_engine_for() -> None:
    other = FakeTTS("espeak", 22050)
    router, spare = Router(other), FakeTTS("spare", 16000, fail="start")
    chain = FallbackTTS([router, spare], TIMEOUTS, BREAKER)
    await chain.start()
    assert chain.status().state is State.DEGRADED
    assert chain.engine_for(Voice("ru")) is other
    assert chain.engine_for(Voice("en")) is router
    plain = FakeTTS("plain", 22050)
    assert FallbackTTS([plain], TIMEOUTS, BREAKER).engine_for(Voice("ru")) is plain
    await chain.close()
    assert (router.closes, spare.closes) == (1, 0)
