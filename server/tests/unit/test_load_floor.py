"""``load_test.py --floor``'s arithmetic: CPU per second of audio against the gRPC floor."""

from __future__ import annotations

import pytest
from scripts.loadtest.floor import (
    MAX_BYTES,
    WIRE_BYTES,
    Net,
    Run,
    even_bytes,
    floor_failures,
    message_seconds,
    net_cost,
    per_audio_second,
)


def test_a_wire_chunk_is_100_ms_and_sizes_round_to_whole_samples() -> None:
    assert message_seconds(WIRE_BYTES) == pytest.approx(0.1)
    assert message_seconds(24000) == pytest.approx(0.25)
    assert even_bytes(17986.9) == 17986
    assert even_bytes(17987.1) == 17988
    assert even_bytes(0.4) == 2  # never an empty message
    assert even_bytes(5e6) == MAX_BYTES


def test_net_cost_subtracts_the_run_without_writes_per_delivered_message() -> None:
    writes = Run(messages=1000, seconds=5.0, server_cpu=0.30, client_cpu=0.25)
    sleeps = Run(messages=0, seconds=5.0, server_cpu=0.10, client_cpu=0.05)
    net = net_cost(writes, sleeps)
    assert net.server_us == pytest.approx(200.0)
    assert net.reader_us == pytest.approx(200.0)


def test_per_audio_second_scales_each_floor_by_its_messages_per_second_of_audio() -> None:
    # 100 s of audio in 500 messages (200 ms each); the server spent 0.6 s, the generator 0.2 s.
    same = Net(server_us=80.0, reader_us=100.0)  # per 200 ms message
    wire = Net(server_us=60.0, reader_us=70.0)  # per 100 ms message
    cmp = per_audio_second(
        server_cpu_s=0.6, generator_cpu_s=0.2, audio_s=100.0, messages=500, same=same, wire=wire
    )
    assert cmp["messages_per_audio_s"] == pytest.approx(5.0)
    assert cmp["server_ms"] == pytest.approx(6.0)
    assert cmp["generator_ms"] == pytest.approx(2.0)
    assert cmp["floor_same_server_ms"] == pytest.approx(0.4)  # 5 × 80 µs
    assert cmp["floor_same_reader_ms"] == pytest.approx(0.5)
    assert cmp["ratio_same"] == pytest.approx(15.0)
    assert cmp["floor_100ms_server_ms"] == pytest.approx(0.6)  # 10 × 60 µs
    assert cmp["floor_100ms_reader_ms"] == pytest.approx(0.7)
    assert cmp["ratio_100ms"] == pytest.approx(10.0)
    assert cmp["generator_to_reader_same"] == pytest.approx(4.0)


def test_unknown_server_cpu_or_a_noisy_floor_gives_no_ratio() -> None:
    cmp = per_audio_second(
        server_cpu_s=None,  # a --target without a pid: no server CPU
        generator_cpu_s=0.2,
        audio_s=10.0,
        messages=50,
        same=Net(-5.0, 10.0),  # the no-write run cost more: noise, not a floor
        wire=Net(50.0, 10.0),
    )
    assert cmp["server_ms"] is None and cmp["ratio_same"] is None and cmp["ratio_100ms"] is None
    # The generator's 20 ms/s against the reader's 5 messages/s × 10 µs = 0.05 ms/s.
    assert cmp["generator_to_reader_same"] == pytest.approx(400.0)


def test_no_audio_gives_no_comparison() -> None:
    net = Net(1.0, 1.0)
    cmp = per_audio_second(
        server_cpu_s=1.0, generator_cpu_s=1.0, audio_s=0.0, messages=0, same=net, wire=net
    )
    assert cmp == {}


def test_floor_failures_count_messages_missing_over_both_floors() -> None:
    floor = {
        "floors": {
            "same": {"expected": 100, "delivered": 100},
            "100ms": {"expected": 200, "delivered": 150},
        }
    }
    assert floor_failures(floor) == (50, 300)
    assert floor_failures({"skipped": "no OK turn with audio"}) == (0, 0)
