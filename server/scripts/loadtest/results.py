"""Every number of a finished run in one dict: the report, the JSON file and the chart use it."""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .monitor import RunState, Sample
from .samplers import LoopLag, histogram_summary, metric_delta
from .target import Target, pacing_of
from .turns import (
    distribution_ms,
    pause_windows,
    per_second_latency,
    summarize_turns,
    turn_records,
)


def collect(
    args: argparse.Namespace,
    target: Target,
    state: RunState,
    samples: list[Sample],
    lag: LoopLag,
    elapsed: float,
    rss_bounds: tuple[float | None, float | None],
    cpu_bounds: tuple[float | None, float | None],
    generator_cpu_s: float,
    metrics_before: dict[str, float],
    metrics_after: dict[str, float],
) -> dict[str, Any]:
    """Everything the report, the JSON file and the chart are made of."""
    results = state.results
    rss_start, rss_end = rss_bounds
    seconds = len(samples)
    series: dict[str, list[Any]] = {
        name: [getattr(s, name) for s in samples] for name in Sample.__dataclass_fields__
    }
    series.update(per_second_latency(results, seconds))
    rss_values = [v for v in series["rss_mb"] if v is not None]
    delta = metric_delta(metrics_before, metrics_after)
    server = {
        "first_text": histogram_summary(delta, "nexy_time_to_first_text_seconds"),
        "first_audio": histogram_summary(delta, "nexy_time_to_first_audio_seconds"),
        "turn_duration": histogram_summary(delta, "nexy_turn_duration_seconds"),
        "llm_first_output": histogram_summary(
            delta, "nexy_provider_first_output_seconds", {"kind": "llm", "provider": "scripted"}
        ),
        "tts_first_output": histogram_summary(
            delta, "nexy_provider_first_output_seconds", {"kind": "tts", "provider": "scripted"}
        ),
        "counters": {
            k: v
            for k, v in delta.items()
            if v and k.startswith(("nexy_turns_total", "nexy_stream_errors", "nexy_rejections"))
        },
    }
    busy = [s for s in samples if s.in_flight > 0]

    def busy_mean(name: str) -> float | None:
        values = [getattr(s, name) for s in busy if getattr(s, name) is not None]
        return statistics.fmean(values) if values else None

    # Client-measured minus server-measured time to first audio: what a turn spent before the
    # server's handler admitted it (gRPC accept queue, connection, client) on average.
    client_first = [r.first_audio for r in results if r.ok and r.first_audio is not None]
    before_admission = (
        statistics.fmean(client_first) * 1000 - server["first_audio"]["mean_ms"]
        if client_first and server["first_audio"]
        else None
    )
    cpu_start, cpu_end = cpu_bounds
    server_cpu_s = cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None
    per_chunk_ms = cpu_per(cpu_bounds, sum(r.chunks for r in results))
    per_chunk_us = per_chunk_ms * 1000 if per_chunk_ms is not None else None
    summary = summarize_turns(results, args.gap_limit_ms / 1000)
    summary.update(
        {
            "elapsed_s": round(elapsed, 2),
            "turns_per_s": round(len(results) / elapsed, 2) if elapsed else None,
            "rss_mb": {
                "start": rss_start,
                "end": rss_end,
                "max": max(rss_values) if rss_values else None,
                "growth": (rss_end - rss_start) if rss_start and rss_end else None,
                "after_warmup": state.warm_rss_mb,
                "warmup_reached_at_s": state.warm_at_s,
                "growth_after_warmup": (rss_end - state.warm_rss_mb)
                if rss_end and state.warm_rss_mb
                else None,
                "slope_mb_per_10k_turns": rss_slope(samples, args.warmup_turns),
            },
            "cpu_percent_mean_while_busy": {
                "server": busy_mean("server_cpu"),
                "server_main_thread": busy_mean("server_main_thread_cpu"),
                "server_other_threads": busy_mean("server_other_threads_cpu"),
                "generator": busy_mean("client_cpu"),
            },
            "status_rtt_ms_while_busy": distribution_ms(
                [s.status_rtt_ms / 1000 for s in busy if s.status_rtt_ms is not None]
            ),
            "status_timeouts_while_busy": sum(
                1 for s in busy if target.http_port and s.status_rtt_ms is None
            ),
            "before_admission_mean_ms": before_admission,
            "server_cpu_per_turn_ms": cpu_per(cpu_bounds, len(results)),
            "server_cpu_s": server_cpu_s,
            "generator_cpu_s": generator_cpu_s,
            "server_cpu_per_audio_chunk_us": per_chunk_us,
            "pause_windows": pause_windows(results),
            "server_active_mean_while_busy": busy_mean("server_active"),
            "generator_loop_lag_ms": distribution_ms(lag.samples),
        }
    )
    return {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "mode": "rss" if args.rss_turns is not None else "load",
        "machine": {
            # Other work on the machine steals the same two cores: keep it next to the numbers.
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "load_average_at_start": state.load_at_start,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "max_turns": args.max_turns,
            "warmup_turns": args.warmup_turns,
            "channels": args.channels or args.concurrency,
            "back_to_back": args.back_to_back,
            "prebuffer_ms": args.prebuffer_ms,
            "gap_limit_ms": args.gap_limit_ms,
            "spawned": target.spawned,
            "pacing": asdict(pacing_of(args)) if target.spawned else None,
            "server_env": args.server_env,
            "expected_audio_s": pacing_of(args).audio_seconds() if target.spawned else None,
        },
        "summary": summary,
        "server_metrics": server,
        "series": series,
        "turns": turn_records(results),
    }


def cpu_per(bounds: tuple[float | None, float | None], count: int) -> float | None:
    """Server CPU milliseconds per unit of work over the run (drain included, warm-up not)."""
    start, end = bounds
    if start is None or end is None or not count:
        return None
    return (end - start) / count * 1000


def rss_slope(samples: list[Sample], warmup_turns: int) -> float | None:
    """Least-squares MB per 10,000 turns after warm-up: growth that a short run can extrapolate."""
    points = [(s.turns_done, s.rss_mb) for s in samples if s.rss_mb is not None]
    points = [(x, y) for x, y in points if x >= max(warmup_turns, 1)]
    if len(points) < 3 or points[-1][0] == points[0][0]:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance * 10_000 if variance else None


def finite(value: Any) -> Any:
    """NaN and infinities become null: strict JSON readers reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
