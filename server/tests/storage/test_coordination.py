"""Coordination backends: the same scenarios in process and on the machine's real Redis.

Each scenario gets two "replicas": for Redis, two backend instances sharing a key prefix unique to
the test (its keys are deleted afterwards); in process, one backend shared by both sides, since
the in-process backend's cluster is the one process. The Redis variant is skipped only when
nothing listens on its port (``NEXY_TEST_REDIS_URL``, default 127.0.0.1:6379); a Redis that
answers but misbehaves fails the tests. The outage tests need no Redis at all or a proxy to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from nexy.components import State
from nexy.config import CoordinationSettings, LimitsSettings
from nexy.coordination import Coordination, LocalCoordination, RedisCoordination
from nexy.events import ErrorKind
from nexy.turn.tracker import AdmissionError, TurnHandle, TurnTracker
from tests.fakes.tcp_proxy import OutageProxy

REDIS_URL = os.environ.get("NEXY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HW, OTHER = "DEVICE-A", "DEVICE-B"
_redis_listening: bool | None = None


def redis_address() -> tuple[str, int]:
    parts = urlsplit(REDIS_URL)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def require_redis() -> None:
    """Skip when no Redis runs; never when one runs but misbehaves."""
    global _redis_listening
    if _redis_listening is None:
        try:
            with socket.create_connection(redis_address(), timeout=3):
                _redis_listening = True
        except ConnectionRefusedError:  # only "nothing listens"; other errors fail the test
            _redis_listening = False
    if not _redis_listening:
        host, port = redis_address()
        pytest.skip(f"Redis variant: nothing listens on {host}:{port} (connection refused)")


def unique_prefix() -> str:
    return f"nexy_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


async def delete_keys(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on return: nothing listens there


def redis_settings(url: str, prefix: str, timeout: float = 0.25) -> CoordinationSettings:
    return CoordinationSettings(
        redis_url=SecretStr(url), key_prefix=prefix, operation_timeout_seconds=timeout
    )


Pair = Callable[..., Any]


@pytest.fixture(params=["local", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    """Makes two started replicas' backends: ``await pair(limits, **backend_options)``."""
    prefix = unique_prefix()
    started: list[Coordination] = []

    async def make(
        limits: LimitsSettings | None = None, **options: Any
    ) -> tuple[Coordination, Coordination]:
        limits = limits or LimitsSettings()
        if request.param == "local":
            shared = LocalCoordination(limits)
            return shared, shared
        for _ in range(2):
            backend = RedisCoordination(redis_settings(REDIS_URL, prefix), limits, **options)
            await backend.start()
            assert backend.status().state is State.READY
            started.append(backend)
        return started[-2], started[-1]

    if request.param == "redis":
        require_redis()
    yield make
    for backend in started:
        await backend.close()
    if request.param == "redis":
        await delete_keys(prefix)


async def claim_soon(backend: Coordination, session: str, limit: int | None = None) -> None:
    """Claim once the other replica's release (sent in the background) has landed."""
    async with asyncio.timeout(2):
        while True:
            try:
                await backend.claim(HW, session, limit)
                return
            except AdmissionError:
                await asyncio.sleep(0.005)


def refused(kind: ErrorKind, reason: str) -> Callable[[AdmissionError], None]:
    def check(error: AdmissionError) -> None:
        assert error.kind == kind and error.reason == reason, error.message

    return check


async def test_single_flight_per_session_across_replicas(pair: Pair) -> None:
    a, b = await pair()
    session = str(uuid.uuid4())
    first = await a.claim(HW, session, None)
    for replica in (b, a):
        with pytest.raises(AdmissionError) as caught:
            await replica.claim(HW, session, None)
        refused(ErrorKind.ALREADY_EXISTS, "duplicate_session")(caught.value)
    assert not first.released  # the refusals did not disturb the running turn
    a.release(first)
    await claim_soon(b, session)


async def test_device_concurrency_across_replicas(pair: Pair) -> None:
    a, b = await pair()
    first = await a.claim(HW, "s1", 1)
    with pytest.raises(AdmissionError) as caught:
        await b.claim(HW, "s2", 1)
    refused(ErrorKind.RESOURCE_EXHAUSTED, "device_turns")(caught.value)
    assert caught.value.message.startswith("DEVICE_TURN_LIMIT_EXCEEDED")
    await b.claim(OTHER, "s3", 1)  # per device
    a.release(first)
    await claim_soon(b, "s2", 1)


async def test_rate_is_shared_and_refund_gives_a_token_back(pair: Pair) -> None:
    a, b = await pair(LimitsSettings(device_burst=2, device_requests_per_minute=1))
    await a.limiter.check(HW)
    await b.limiter.check(HW)
    with pytest.raises(AdmissionError) as caught:
        await a.limiter.check(HW)
    refused(ErrorKind.RESOURCE_EXHAUSTED, "device_rate")(caught.value)
    assert (
        caught.value.message.startswith("RATE_LIMIT_EXCEEDED")
        and "retry in" in caught.value.message
    )
    await b.limiter.refund(HW)
    await a.limiter.check(HW)
    await b.limiter.check(OTHER)


async def test_daily_quota_is_shared_and_refundable(pair: Pair) -> None:
    a, b = await pair(LimitsSettings(device_burst=100, daily_turns=2))
    await a.limiter.check(HW)
    await b.limiter.check(HW)
    with pytest.raises(AdmissionError) as caught:
        await b.limiter.check(HW)
    refused(ErrorKind.PERMISSION_DENIED, "daily_quota")(caught.value)
    assert caught.value.message.startswith("daily limit exceeded")
    await a.limiter.refund(HW)
    await b.limiter.check(HW)


async def test_tracker_refunds_a_turn_the_other_replica_refused(pair: Pair) -> None:
    a, b = await pair(LimitsSettings(device_burst=2, device_requests_per_minute=1))
    one = TurnTracker(10, max_turns_per_device=1, device_limits=a.limiter, coordination=a)
    two = TurnTracker(10, max_turns_per_device=1, device_limits=b.limiter, coordination=b)
    handle = await one.admit(HW, "s1")
    with pytest.raises(AdmissionError) as caught:
        await two.admit(HW, "s2")  # device busy on the other replica: the token comes back
    assert caught.value.reason == "device_turns"
    one.release(handle)
    async with asyncio.timeout(2):
        while True:
            try:
                await two.admit(HW, "s2")  # the second token of the burst is still there
                break
            except AdmissionError as exc:
                assert exc.reason == "device_turns"
                await asyncio.sleep(0.005)


async def _running(tracker: TurnTracker, session: str, hardware_id: str = HW) -> TurnHandle:
    handle = await tracker.admit(hardware_id, session)
    handle.task = asyncio.create_task(asyncio.sleep(30))
    return handle


async def test_interrupt_on_one_replica_cancels_the_turn_on_the_other(pair: Pair) -> None:
    a, b = await pair()
    runs_it, receives_it = TurnTracker(10, coordination=a), TurnTracker(10, coordination=b)
    target = await _running(runs_it, "s-target")
    bystander = await _running(runs_it, "s-other-device", OTHER)
    started = time.perf_counter()
    assert await receives_it.interrupt(HW) == ["s-target"]
    assert target.task is not None
    await asyncio.wait([target.task], timeout=0.2)
    latency = time.perf_counter() - started
    assert target.task.cancelled() and target.interrupted, f"not cancelled after {latency:.3f} s"
    assert not bystander.interrupted
    runs_it.release(target)
    # A turn that starts after the interrupt is not touched by it.
    later = await _running(runs_it, "s-later")
    await asyncio.sleep(0.05)
    assert not later.interrupted
    for handle in (bystander, later):
        assert handle.task is not None
        handle.task.cancel()
        runs_it.release(handle)
    async with asyncio.timeout(1):  # once the releases (sent in the background) have landed
        while await receives_it.interrupt(HW):
            await asyncio.sleep(0.005)


async def test_lease_is_renewed_while_the_turn_runs_and_expires_when_the_replica_dies() -> None:
    require_redis()
    prefix = unique_prefix()
    settings = redis_settings(REDIS_URL, prefix)
    a = RedisCoordination(settings, LimitsSettings(), lease_seconds=0.3)
    b = RedisCoordination(settings, LimitsSettings(), lease_seconds=0.3)
    await a.start()
    await b.start()
    try:
        await a.claim(HW, "s1", 1)
        await asyncio.sleep(0.8)  # well past one lease: renewed meanwhile
        with pytest.raises(AdmissionError):
            await b.claim(HW, "s1", 1)
        await a.close()  # closing releases; a crash does not, so simulate one on a second claim
        a = RedisCoordination(settings, LimitsSettings(), lease_seconds=0.3)
        await a.start()
        await a.claim(HW, "s2", 1)
        for task in a._loops:  # the replica stops renewing, as a dead one would
            task.cancel()
        await asyncio.sleep(0.45)
        await b.claim(HW, "s2", 1)
    finally:
        await a.close()
        await b.close()
        await delete_keys(prefix)


async def test_unreachable_redis_degrades_with_one_warning_and_admits_turns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="nexy.coordination")
    url = f"redis://127.0.0.1:{closed_port()}/0"
    limits = LimitsSettings(device_burst=100)
    backend = RedisCoordination(redis_settings(url, unique_prefix()), limits)
    await backend.start()
    try:
        status = backend.status()
        assert status.state is State.DEGRADED and "redis unreachable" in status.reason
        tracker = TurnTracker(
            100, max_turns_per_device=50, device_limits=backend.limiter, coordination=backend
        )
        started = time.perf_counter()
        handles = [await _running(tracker, f"s{index}") for index in range(10)]
        assert time.perf_counter() - started < 0.5  # no per-turn wait on the missing Redis
        with pytest.raises(AdmissionError) as caught:  # single-flight still holds locally
            await tracker.admit(HW, "s0")
        assert caught.value.kind == ErrorKind.ALREADY_EXISTS
        assert await tracker.interrupt(HW) == sorted(f"s{index}" for index in range(10))
        for handle in handles:
            tracker.release(handle)
        await asyncio.sleep(0.5)  # the background loops keep probing, quietly
    finally:
        await backend.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "redis is unreachable" in warnings[0].getMessage()


async def test_outage_then_recovery_restores_cluster_wide_coordination(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_redis()
    caplog.set_level(logging.WARNING, logger="nexy.coordination")
    proxy = OutageProxy(*redis_address())
    await proxy.start()
    prefix = unique_prefix()
    settings = redis_settings(f"redis://127.0.0.1:{proxy.port}/0", prefix)
    a, b = (
        RedisCoordination(settings, LimitsSettings()),
        RedisCoordination(settings, LimitsSettings()),
    )
    await a.start()
    await b.start()
    try:
        runs_it, receives_it = TurnTracker(10, coordination=a), TurnTracker(10, coordination=b)
        await proxy.cut()
        first = await runs_it.admit(HW, "s-cut-0")  # the call that finds Redis gone
        with pytest.raises(AdmissionError):  # duplicates are still refused within the replica
            await runs_it.admit(HW, "s-cut-0")
        runs_it.release(first)
        target = await _running(runs_it, "s-cut")  # admitted during the outage
        assert a.status().state is State.DEGRADED
        await proxy.restore()
        async with asyncio.timeout(10):
            while not all(x.status().state is State.READY for x in (a, b)):
                await asyncio.sleep(0.05)
            while True:  # the outage-time turn gets registered by the lease loop
                try:
                    claim = await b.claim(HW, "s-cut", None)
                except AdmissionError:
                    break
                b.release(claim)
                await asyncio.sleep(0.1)
        assert "s-cut" in await receives_it.interrupt(HW)
        assert target.task is not None
        await asyncio.wait([target.task], timeout=0.2)
        assert target.interrupted and target.task.cancelled()
    finally:
        await a.close()
        await b.close()
        await proxy.close()
        await delete_keys(prefix)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # one per replica for the one outage
    assert all("redis is unreachable" in record.getMessage() for record in warnings)
