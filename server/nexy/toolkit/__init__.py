"""The testing guide's toolkit: importable checks behind the scripts in ``server/scripts``.

Every suite is an async function ``run_*(target, report, ...)`` that adds :class:`Check`
verdicts (``name``, ``ok``, ``detail``, ``skipped``) to a :class:`Report`; the scripts are thin
command lines around them (:mod:`nexy.toolkit.cli`), and the integration tests call the same
functions against in-process servers.

| script                         | suite                                              |
|--------------------------------|----------------------------------------------------|
| ``grpc_smoke.py``              | :func:`nexy.toolkit.smoke.run_smoke`               |
| ``check_grpc_health.py``       | :func:`nexy.toolkit.health.run_health`             |
| ``test_full_pipeline_e2e.py``  | :func:`nexy.toolkit.pipeline.run_pipeline`         |
| ``test_full_chain_client.py``  | :func:`nexy.toolkit.pipeline.run_chain`            |
| ``test_mcp_full_integration.py`` | :func:`nexy.toolkit.actions.run_actions` (+ offline) |
| ``test_backpressure.py``       | :func:`nexy.toolkit.backpressure.run_backpressure` |
| ``test_interceptor_errors.py`` | :func:`nexy.toolkit.interceptors.run_interceptor_errors` |
| ``test_welcome_audio.py``      | :func:`nexy.toolkit.welcome.run_welcome`           |
| ``grpc_contract_tests.py``     | :func:`nexy.toolkit.contract.run_contract`         |
| ``chaos_smoke.py``             | :func:`nexy.toolkit.chaos.run_chaos`               |

Every printed sentence is ``say(english, russian)`` (:mod:`nexy.toolkit.lang`): English by
default, Russian for a Russian locale; check names and exit codes never change with it.

Connections: :func:`nexy.toolkit.connection.target` (port 443 or ``tls=True`` → TLS with the
system roots and https; else plaintext). The smoke level of ``run_all_tests.py`` starts a real
server with :func:`nexy.toolkit.local_server.local_server`.
"""

from __future__ import annotations

from nexy.toolkit.connection import Target, http_target, target
from nexy.toolkit.results import Check, Report

__all__ = ["Check", "Report", "Target", "http_target", "target"]
