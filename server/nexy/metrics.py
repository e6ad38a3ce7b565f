"""Prometheus metrics, one registry per application (no module-level global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 6.0, 12.0)


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.turns = Counter("nexy_turns", "Turns finished, by outcome", ["outcome"], registry=r)
        self.errors = Counter(
            "nexy_stream_errors",
            "Streams ended with an error, by gRPC status",
            ["status"],
            registry=r,
        )
        self.rejections = Counter(
            "nexy_rejections", "Turns refused at admission, by reason", ["reason"], registry=r
        )
        self.active_turns = Gauge("nexy_active_turns", "Turns running now", registry=r)
        self.first_text = Histogram(
            "nexy_time_to_first_text_seconds",
            "Admission to first text_chunk sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_audio = Histogram(
            "nexy_time_to_first_audio_seconds",
            "Admission to first audio_chunk sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.turn_duration = Histogram(
            "nexy_turn_duration_seconds",
            "Admission to terminal message",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.collects = Counter("nexy_collect_requests", "COLLECT requests accepted", registry=r)
        self.actions_dropped = Counter(
            "nexy_actions_dropped", "Model commands refused by the allow-list", registry=r
        )
        self.welcome = Counter(
            "nexy_welcome_requests",
            "GenerateWelcomeAudio calls, by cache result",
            ["cache"],
            registry=r,
        )
        self.usage_reports = Counter(
            "nexy_usage_reports", "ReportUsage calls, by result", ["result"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
