"""What the load test reads while it runs: processes, its own event loop and the server's HTTP.

psutil gives RSS and CPU (per thread too), ``LoopLag`` the load generator's own saturation,
``/status`` the server loop's responsiveness and ``/metrics`` the server's own histograms.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

MB = 1024 * 1024


class ProcessProbe:
    """RSS and CPU of one process via psutil; quietly None when the process is unknown or gone."""

    def __init__(self, pid: int | None) -> None:
        self._process: psutil.Process | None = None
        self._pid = pid
        self._thread_times: dict[int, float] = {}
        self._thread_clock = time.perf_counter()
        if pid is not None:
            try:
                self._process = psutil.Process(pid)
                self._process.cpu_percent()  # the first call only sets the reference point
            except psutil.Error:
                self._process = None

    @property
    def available(self) -> bool:
        return self._process is not None

    def rss_mb(self) -> float | None:
        if self._process is None:
            return None
        try:
            return float(self._process.memory_info().rss) / MB
        except psutil.Error:
            return None

    def cpu_percent(self) -> float | None:
        """CPU use since the previous call, in percent of one core."""
        if self._process is None:
            return None
        try:
            return float(self._process.cpu_percent())
        except psutil.Error:
            return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process has used so far."""
        if self._process is None:
            return None
        try:
            times = self._process.cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)

    def main_thread_cpu(self) -> tuple[float, float] | None:
        """(main thread, all other threads) CPU since the previous call, % of one core.

        The server's asyncio loop runs on its main thread; if that thread is near 100 % the loop
        is the bottleneck, while a busy process with an idle main thread points elsewhere
        (gRPC core threads, database threads). This is the cheap stand-in for a profiler.
        """
        if self._process is None:
            return None
        try:
            threads = self._process.threads()
        except psutil.Error:
            return None
        now = time.perf_counter()
        elapsed, self._thread_clock = now - self._thread_clock, now
        times = {t.id: t.user_time + t.system_time for t in threads}
        previous, self._thread_times = self._thread_times, times
        if not previous or elapsed <= 0:
            return None
        spent = {tid: cpu - previous.get(tid, 0.0) for tid, cpu in times.items()}
        main = spent.pop(self._pid, 0.0) if self._pid is not None else 0.0
        return main / elapsed * 100, sum(spent.values()) / elapsed * 100


def find_listener_pid(port: int) -> int | None:
    """The pid listening on a local TCP port, if this user may see it (for ``--target`` RSS)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


@dataclass(slots=True)
class LoopLag:
    """How late this process's event loop wakes up: the load generator's own saturation.

    When the client's loop is late, every gap it measures is inflated by that much, so the report
    shows it next to the gaps rather than leaving the server to take the blame.
    """

    interval: float = 0.05
    worst: float = 0.0  # since the last take()
    samples: list[float] = field(default_factory=list)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - before - self.interval)
            self.worst = max(self.worst, lag)
            self.samples.append(lag)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


async def fetch_active_turns(
    http: aiohttp.ClientSession, base: str
) -> tuple[int | None, float | None]:
    """``active_turns`` from ``/status`` and the request's round trip in seconds.

    The HTTP handlers share the server's event loop with the turns, so the round trip of a
    trivial request is a live reading of how long that loop takes to get to new work.
    """
    started = time.perf_counter()
    try:
        async with http.get(f"{base}/status") as response:
            body = await response.json()
            return int(body["active_turns"]), time.perf_counter() - started
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, TypeError):
        return None, None


async def fetch_metrics(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """Every sample of ``/metrics`` as ``name{label="v",...}`` -> value (empty on failure)."""
    try:
        async with http.get(f"{base}/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = float(sample.value)
    return samples


def metric_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Every sample's change over the run (zeros kept: histogram buckets need all bounds)."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def histogram_summary(
    delta: dict[str, float], name: str, labels: dict[str, str] | None = None
) -> dict[str, float]:
    """Count, mean and an interpolated p50/p95 of a Prometheus histogram's change over the run.

    Only the run's own observations count (the delta), so the warm-up turn or an earlier run
    against the same ``--target`` do not leak in. Quantiles are bucket estimates, like PromQL's
    ``histogram_quantile``.
    """
    wanted = [f'{k}="{v}"' for k, v in sorted((labels or {}).items())]
    inner = ",".join(wanted)
    count = delta.get(f"{name}_count{{{inner}}}", 0.0)
    total = delta.get(f"{name}_sum{{{inner}}}", 0.0)
    if count <= 0:
        return {}
    buckets: list[tuple[float, float]] = []
    for key, value in delta.items():
        if not key.startswith(f"{name}_bucket{{"):
            continue
        pairs = key[len(name) + len("_bucket{") : -1].split(",")
        # Same series only: every wanted label present, and nothing else besides "le".
        if sorted(p for p in pairs if not p.startswith("le=")) != wanted:
            continue
        bound = next(p for p in pairs if p.startswith("le="))[4:-1]
        buckets.append((math.inf if bound == "+Inf" else float(bound), value))
    buckets.sort()
    summary = {"count": count, "mean_ms": total / count * 1000}
    for q in (50, 95):
        summary[f"p{q}_ms"] = _bucket_quantile(buckets, count, q / 100) * 1000
    return summary


def _bucket_quantile(buckets: list[tuple[float, float]], count: float, q: float) -> float:
    rank, lower, below = q * count, 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # above the last finite bucket: its bound is all that is known
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower
