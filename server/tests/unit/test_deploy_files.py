"""The deployment files set real settings: every NEXY_* name loads, and replicas listen outside."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nexy.config_loading import load_settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _configmap_env() -> dict[str, str]:
    document = yaml.safe_load((DEPLOY / "k8s" / "configmap.yaml").read_text())
    return {k: str(v) for k, v in document["data"].items() if k.startswith("NEXY_")}


def _compose_env() -> dict[str, str]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return {k: str(v) for k, v in document["x-nexy-server"]["environment"].items()}


def _dockerfile_env() -> dict[str, str]:
    text = (DEPLOY / "Dockerfile").read_text()
    return dict(re.findall(r"(NEXY_[A-Z0-9_]+)=(\S+)", text))


def test_every_deploy_file_loads_and_binds_all_interfaces():
    # ${POSTGRES_PASSWORD:-…} is compose's own syntax; the URL stays a valid string either way.
    for name, env in (
        ("k8s/configmap.yaml", _configmap_env()),
        ("compose.yaml", _compose_env()),
        ("Dockerfile", _dockerfile_env()),
    ):
        settings = load_settings(env=env)
        assert settings.server.host == "0.0.0.0", name


def test_replicas_behind_a_proxy_leave_per_client_caps_to_the_proxy():
    # Behind Envoy or an ingress every stream arrives from the proxy: a per-peer cap would cap
    # the proxy itself, so the files turn those off (Envoy caps streams per client connection).
    for env in (_configmap_env(), _compose_env()):
        limits = load_settings(env=env).limits
        assert limits.max_turns_per_connection == 0
        assert limits.max_turns_per_address == 0
    envoy = (DEPLOY / "envoy.yaml").read_text()
    assert re.search(r"max_concurrent_streams: 16\b", envoy)
