"""Measurement pieces of the load test: one timed turn, samplers, summaries and the chart.

Kept apart from ``load_test.py`` so that the command line and the orchestration stay readable and
so that other scripts can reuse a turn timed chunk by chunk.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import statistics
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import psutil
from prometheus_client.parser import text_string_to_metric_families

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

MB = 1024 * 1024
LOOPBACK_NAMES = frozenset({"localhost"})


# --------------------------------------------------------------------------------------------
# Target safety
# --------------------------------------------------------------------------------------------


def require_loopback(host: str) -> str:
    """Return ``host`` if it is loopback (127.0.0.0/8, ::1, localhost); raise otherwise.

    Names other than ``localhost`` are refused without resolving them: a DNS answer can point
    anywhere, and a load generator must never be aimed at someone else's machine by accident.
    """
    bare = host.strip().strip("[]")
    if bare.lower() in LOOPBACK_NAMES:
        return bare
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        raise ValueError(f"refusing non-loopback target host {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"refusing non-loopback target host {host!r}")
    return bare


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[::1]:PORT`` into a checked loopback host and a port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"target must be HOST:PORT, got {text!r}")
    return require_loopback(host), int(port_text)


def grpc_address(host: str, port: int) -> str:
    """The address string grpc expects (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------------------------
# One turn, timed chunk by chunk
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TurnResult:
    """What the client saw of one COMMIT. Times are seconds; ``started`` is from the run start."""

    client: int
    started: float
    status: str  # OK, a gRPC status code name, ERROR_MESSAGE, NO_AUDIO, STREAM_ENDED, ...
    total: float
    first_text: float | None = None
    first_audio: float | None = None
    max_gap: float | None = None  # largest interval between consecutive audio chunks
    max_gap_at: float | None = None  # seconds of audio received before that gap: which segment
    stall: float = 0.0  # playback underrun time with the configured jitter buffer
    chunks: int = 0
    audio_seconds: float = 0.0
    detail: str = ""
    # (when it ended, seconds from the run start; its length) for every gap over the limit:
    # gaps that line up across many streams at once are pauses of the whole server.
    late_gaps: list[tuple[float, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def _chunk_seconds(chunk: pb.AudioChunk) -> float:
    """Playback length of one audio chunk (16-bit PCM, as the server sends)."""
    # The proto carries the dtype; anything else than int16 would be a contract change, so only
    # the sample width is derived from it and everything unknown is read as 2 bytes.
    width = 4 if chunk.dtype in ("float32", "int32") else 2
    rate = chunk.sample_rate or 48000
    return len(chunk.audio_data) / (width * rate * max(1, chunk.channels))


def playback_stall(arrivals: list[float], durations: list[float], prebuffer: float) -> float:
    """Seconds a player would sit silent, starting ``prebuffer`` s after the first chunk arrives.

    The gap alone overstates trouble when a burst of queued audio precedes it, and understates it
    when many slightly late chunks add up; a player's clock is the honest judge of starvation.
    """
    if not arrivals:
        return 0.0
    play_until = arrivals[0] + prebuffer  # playback position (wall time) the buffer reaches
    stalled = 0.0
    for arrival, duration in zip(arrivals, durations, strict=True):
        if arrival > play_until:
            stalled += arrival - play_until
            play_until = arrival
        play_until += duration
    return stalled


async def timed_turn(
    stub: pb_grpc.StreamingServiceStub,
    prompt: str,
    hardware_id: str,
    *,
    client: int,
    run_start: float,
    deadline_s: float,
    prebuffer: float,
    gap_limit: float,
) -> TurnResult:
    """One COMMIT as the desktop client sends it; every response is timestamped on arrival."""
    request = pb.StreamRequest(
        prompt=prompt,
        hardware_id=hardware_id,
        session_id=str(uuid.uuid4()),
        phase=pb.REQUEST_PHASE_COMMIT,
    )
    started = time.perf_counter()
    first_text: float | None = None
    arrivals: list[float] = []
    durations: list[float] = []
    status, detail = "STREAM_ENDED", ""
    try:
        async for response in stub.StreamAudio(request, timeout=deadline_s):
            now = time.perf_counter()
            kind = response.WhichOneof("content")
            if kind == "audio_chunk":
                arrivals.append(now)
                durations.append(_chunk_seconds(response.audio_chunk))
            elif kind == "text_chunk" and first_text is None:
                first_text = now - started
            elif kind == "end_message":
                status = "OK"
                break
            elif kind == "error_message":
                status, detail = "ERROR_MESSAGE", response.error_message[:200]
                break
    except grpc.aio.AioRpcError as exc:
        status, detail = exc.code().name, (exc.details() or "")[:200]
    except asyncio.CancelledError:
        # The drain deadline cancelled this turn: record it so that nothing silently vanishes.
        status = "CANCELLED_BY_TEST"
    total = time.perf_counter() - started
    if status == "OK" and not arrivals:
        status = "NO_AUDIO"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    worst = max(range(len(gaps)), key=gaps.__getitem__) if gaps else None
    late = [
        (round(arrivals[i + 1] - run_start, 4), round(gap, 4))
        for i, gap in enumerate(gaps)
        if gap > gap_limit
    ]
    return TurnResult(
        client=client,
        started=started - run_start,
        status=status,
        total=total,
        first_text=first_text,
        first_audio=arrivals[0] - started if arrivals else None,
        max_gap=gaps[worst] if worst is not None else None,
        max_gap_at=sum(durations[: worst + 1]) if worst is not None else None,
        stall=playback_stall(arrivals, durations, prebuffer),
        chunks=len(arrivals),
        audio_seconds=sum(durations),
        detail=detail,
        late_gaps=late,
    )


# --------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (as benchlib.percentile), None for an empty list."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def distribution_ms(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max in milliseconds."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "max": max(ms) if ms else None,
    }


def summarize_turns(results: list[TurnResult], gap_limit: float) -> dict[str, Any]:
    """Latency distributions over successful turns, and every outcome by status."""
    ok = [r for r in results if r.ok]
    gaps = [r.max_gap for r in ok if r.max_gap is not None]
    return {
        "turns": len(results),
        "ok": len(ok),
        "by_status": dict(Counter(r.status for r in results).most_common()),
        "first_text_ms": distribution_ms([r.first_text for r in ok if r.first_text is not None]),
        "first_audio_ms": distribution_ms([r.first_audio for r in ok if r.first_audio is not None]),
        "max_gap_ms": distribution_ms(gaps),
        "turns_gap_over_limit": sum(1 for g in gaps if g > gap_limit),
        "stall_ms": distribution_ms([r.stall for r in ok]),
        "turns_with_stall": sum(1 for r in ok if r.stall > 0.0005),
        "turn_total_ms": distribution_ms([r.total for r in ok]),
        "audio_seconds_mean": (sum(r.audio_seconds for r in ok) / len(ok)) if ok else None,
        "chunks_mean": (sum(r.chunks for r in ok) / len(ok)) if ok else None,
    }


def pause_windows(
    results: list[TurnResult], window: float = 0.25, top: int = 5
) -> list[dict[str, float]]:
    """The moments when the most streams had an over-limit gap end at once.

    One stream's late chunk is scheduling noise; dozens ending their gaps in the same quarter
    second mean the whole server (its event loop) stopped for that long.
    """
    buckets: dict[int, list[float]] = {}
    for r in results:
        for when, gap in r.late_gaps:
            buckets.setdefault(int(when / window), []).append(gap)
    ranked = sorted(buckets.items(), key=lambda item: -len(item[1]))[:top]
    return [
        {
            "t": round(index * window, 2),
            "streams": len(gaps),
            "median_gap_ms": round(statistics.median(gaps) * 1000, 1),
        }
        for index, gaps in sorted(ranked)
    ]


def per_second_latency(results: list[TurnResult], seconds: int) -> dict[str, list[float | None]]:
    """p95 first audio by the second the first audio arrived; p99 max gap by completion second."""
    first: list[list[float]] = [[] for _ in range(seconds)]
    gaps: list[list[float]] = [[] for _ in range(seconds)]
    for r in results:
        if r.first_audio is not None:
            second = int(r.started + r.first_audio)
            if 0 <= second < seconds:
                first[second].append(r.first_audio * 1000)
        if r.max_gap is not None:
            second = int(r.started + r.total)
            if 0 <= second < seconds:
                gaps[second].append(r.max_gap * 1000)
    return {
        "first_audio_p95_ms": [pct(v, 95) for v in first],
        "max_gap_p99_ms": [pct(v, 99) for v in gaps],
    }


def turn_records(results: list[TurnResult]) -> list[dict[str, Any]]:
    """Per-turn rows for the JSON file, rounded so that 10,000 turns stay a few MB."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 5)
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return value

    return [{k: rounded(v) for k, v in asdict(r).items() if v not in ("", [])} for r in results]


# --------------------------------------------------------------------------------------------
# Chart
# --------------------------------------------------------------------------------------------


def render_chart(
    series: dict[str, list[Any]],
    path: Path,
    title: str,
    gap_limit_ms: float,
    late_gaps: list[tuple[float, float]] | None = None,
) -> None:
    """One PNG: in-flight turns, first-audio p95 and gap p99 per second, RSS, CPU and delays."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot's import
    import matplotlib.pyplot as plt

    t = series["t"]
    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True, constrained_layout=True)
    fig.suptitle(title, fontsize=11)

    ax = axes[0]
    ax.plot(t, series["in_flight"], label="in flight (client)", color="tab:blue")
    if any(v is not None for v in series["server_active"]):
        ax.plot(t, _nan(series["server_active"]), "--", label="active (/status)", color="tab:cyan")
    ax.bar(t, series["turns_per_s"], width=0.8, alpha=0.3, color="tab:gray", label="turns/s")
    ax.set_ylabel("turns")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    if late_gaps:
        # Every over-limit gap as a dot at the moment it ended: columns are server-wide pauses.
        ax.scatter(
            [w for w, _ in late_gaps],
            [g * 1000 for _, g in late_gaps],
            s=4,
            alpha=0.25,
            color="tab:red",
            label=f"gaps > {gap_limit_ms:.0f} ms (one dot each)",
        )
    ax.plot(t, _nan(series["first_audio_p95_ms"]), "o-", ms=3, label="first audio p95")
    ax.plot(t, _nan(series["max_gap_p99_ms"]), "s-", ms=3, label="max gap p99 (turns ending)")
    ax.axhline(gap_limit_ms, color="tab:red", lw=0.8, ls=":", label=f"{gap_limit_ms:.0f} ms")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, which="both")

    ax = axes[2]
    ax.plot(t, _nan(series["rss_mb"]), color="tab:purple", label="server RSS")
    ax.set_ylabel("MB")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[3]
    ax.plot(t, _nan(series["server_cpu"]), label="server CPU %", color="tab:orange")
    ax.plot(
        t,
        _nan(series["server_main_thread_cpu"]),
        "--",
        label="server loop thread %",
        color="tab:red",
    )
    ax.plot(t, _nan(series["client_cpu"]), label="load generator CPU %", color="tab:green")
    ax.set_ylabel("% of one core")
    ax.set_xlabel("seconds since start")
    lag = ax.twinx()
    lag.plot(t, _nan(series["status_rtt_ms"]), ":", color="black", label="server /status RTT")
    lag.plot(t, series["client_loop_lag_ms"], ":", color="tab:gray", label="generator loop lag")
    lag.set_ylabel("ms")
    handles = ax.get_legend_handles_labels()
    extra = lag.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _nan(values: list[Any]) -> list[float]:
    """None -> NaN so matplotlib leaves a hole instead of failing."""
    return [math.nan if v is None else float(v) for v in values]
