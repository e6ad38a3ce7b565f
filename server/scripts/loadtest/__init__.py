"""The bounded load test behind ``server/scripts/load_test.py``, one module per concern.

- ``cli``: the command line (flags, hard caps, checks), the run, the report, the exit status.
- ``target``: where the turns go: a checked loopback address or a spawned server with the
  scripted providers paced as the flags say.
- ``run``: the closed-loop clients, their bounded drain, the warm-up and RSS phases.
- ``turns``: one turn timed chunk by chunk (``timed_turn``) and the pure measures over turns:
  ``playback_stall``, the percentile ``pct``, ``summarize_turns``, ``pause_windows``.
- ``monitor``: the state the clients and the monitor share, and the once-a-second sample.
- ``samplers``: what is read while it runs: RSS and CPU (psutil), the own event-loop lag, the
  server's ``/status`` and ``/metrics``.
- ``results``: every number of a finished run in one dict (report, JSON file and chart use it).
- ``report``: the Markdown report (terminal and ``--write`` section) and the PNG chart.
- ``floor``: the gRPC floor (a bare ``grpc.aio`` server and reader) that ``--floor`` runs after
  the load and ``bench_grpc_floor.py`` runs alone, and the CPU per second of audio comparison.

The package is imported as ``loadtest`` when the script runs (``server/scripts`` is on
``sys.path``) and as ``scripts.loadtest`` from the tests; its modules import each other
relatively, and ``benchlib`` as ``scripts.benchlib``, which works both ways because
``server/`` is on ``sys.path`` in both cases (``_bootstrap`` puts it there for the script).
"""
