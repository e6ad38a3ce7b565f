#!/usr/bin/env python3
"""Bounded load test: N closed-loop clients against one Nexy server on this machine.

    python server/scripts/load_test.py --concurrency 300 --duration 60 \\
        [--json out.json] [--chart out.png] [--write docs/BENCHMARKS.md]
    python server/scripts/load_test.py --rss-turns 10000          # "RSS grows < 20 MB" check
    python server/scripts/load_test.py --target 127.0.0.1:50051 --http-port 8080 --pid 1234

By default it spawns its own server (``--spawn``) with the scripted providers paced in real time:
LLM first token ~150 ms then ~30 chunks/s of 6 characters, TTS first chunk ~40 ms and audio
produced at playback speed (real-time factor 1.0). Each client is a listener with its own
hardware_id: it asks again once it has heard the whole answer (the first chunk, the jitter
buffer, the audio and any stall), so N clients are N people listening at once; the server
streams faster than real time, so a turn's stream ends seconds before that (``--back-to-back``
starts the next turn as soon as the stream ends instead: more load per client). Per turn it records
time to first text, time to first audio, the largest gap between audio chunks as received, the
playback stall a player with a small jitter buffer would suffer, and the outcome by gRPC status.
Every second it samples the server's RSS and CPU (psutil), ``/status`` active turns and its own
event-loop lag, and prints one progress line.

``--rss-turns N`` answers "RSS grows by less than X MB over N turns": short turns (one sentence,
TTS at 0.05 real time, 50 clients), RSS read at rest after ``--warmup-turns`` and again at rest
at the end, plus the slope of RSS against turns under load.

The spawned server's limits are out of the way unless ``--server-env`` sets one: with
``--server-env NEXY_LIMITS__MAX_CONCURRENT_TURNS=80`` the clients beyond it are refused, wait
``--retry-pause`` s and try again, and the report adds how many were refused, by which refusal,
and how long each waited for its ``RESOURCE_EXHAUSTED`` (docs/SCALING.md, "Overload").

The report (stdout, and ``--write FILE`` into its ``load_test`` / ``load_test_rss`` section) has
p50/p95/p99 of each measure, errors by status, RSS start/end/max, CPU per turn, the server's own
view from ``/metrics``, and the moments when many streams stalled at once (whole-server pauses).
``--json`` keeps every number, the per-second series and every turn; ``--chart`` draws the run.
``--floor`` then streams the run's own audio messages (and the same audio in 100 ms messages)
through a bare ``grpc.aio`` server and puts the server's CPU per second of audio beside both.
Exit status: 0 if every turn ended normally with audio, 1 if any did not (a refusal counts), 2 if
the run could not start.

Safety: only loopback targets (127.0.0.0/8, ::1, localhost) are accepted, and concurrency, turns
and duration have hard caps; after the deadline no turn starts, and turns still running after a
bounded drain are cancelled.
"""

from __future__ import annotations

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from loadtest.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
