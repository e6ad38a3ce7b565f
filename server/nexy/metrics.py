"""Prometheus metrics, one registry per application (no module-level global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nexy.providers.resilience import ProviderStats
from nexy.storage.outbox import OutboxStats

ProviderSource = Callable[[], dict[str, list[ProviderStats]]]
OutboxSource = Callable[[], OutboxStats]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 6.0, 12.0)
# RPCs range from a millisecond health check to a minute-long spoken turn.
_RPC_BUCKETS = (0.005, 0.025, 0.1, 0.4, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)


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

        self.grpc_requests = Counter(
            "nexy_grpc_requests",
            "gRPC calls finished, by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "nexy_grpc_request_seconds",
            "gRPC call duration, by method",
            ["method"],
            buckets=_RPC_BUCKETS,
            registry=r,
        )
        self.idle_streams = Counter(
            "nexy_idle_streams",
            "Streams ended because the client read nothing for the idle timeout",
            registry=r,
        )
        self.slow_readers = Counter(
            "nexy_slow_readers",
            "Streams ended because the client read audio slower than real-time playback",
            registry=r,
        )
        self.shutdown_interrupts = Counter(
            "nexy_shutdown_interrupted_turns",
            "Turns still running when the shutdown grace period ended",
            registry=r,
        )

        self.provider_first_output = Histogram(
            "nexy_provider_first_output_seconds",
            "Provider latency: request to first text fragment or audio chunk",
            ["kind", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def track_providers(self, source: ProviderSource) -> None:
        """Export the provider chains' counters and breaker states, read at scrape time."""
        self.registry.register(_ProviderCollector(source))

    def track_outbox(self, source: OutboxSource) -> None:
        """Export the outbox's queue and dead-letter counts, read at scrape time."""
        self.registry.register(_OutboxCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _OutboxCollector(Collector):
    """The outbox's own counts (it keeps them; metrics only read them)."""

    def __init__(self, source: OutboxSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        stats = self._source()
        yield GaugeMetricFamily(
            "nexy_outbox_pending", "Storage writes queued on disk, not yet applied", stats.pending
        )
        yield GaugeMetricFamily(
            "nexy_outbox_dead_letters",
            "Storage writes the database refused, set aside in the outbox's dead table",
            stats.dead,
        )
        yield CounterMetricFamily(
            "nexy_outbox_refused", "Storage writes set aside since start", stats.refused
        )


class _ProviderCollector(Collector):
    """Provider calls, failures and state, straight from the chains (no double bookkeeping)."""

    def __init__(self, source: ProviderSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "nexy_provider_calls", "Provider calls", labels=["kind", "provider"]
        )
        failures = CounterMetricFamily(
            "nexy_provider_failures", "Provider failures", labels=["kind", "provider"]
        )
        up = GaugeMetricFamily(
            "nexy_provider_available",
            "1 when the provider may be called (not tripped, not down)",
            labels=["kind", "provider"],
        )
        for kind, members in self._source().items():
            for stats in members:
                labels = [kind, stats.name]
                calls.add_metric(labels, stats.calls)
                failures.add_metric(labels, stats.failures)
                up.add_metric(labels, 1.0 if stats.available else 0.0)
        yield from (calls, failures, up)
