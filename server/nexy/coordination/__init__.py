"""Coordination between replicas: single-flight per session, per-device limits, interrupts.

``build_coordination`` picks the backend from the settings: Redis when ``coordination.redis_url``
is set (cluster-wide), in-process otherwise (the same features, within one replica).
"""

from __future__ import annotations

from nexy.config import CoordinationSettings, LimitsSettings
from nexy.coordination.base import Claim, Coordination, InterruptHandler
from nexy.coordination.local import LocalCoordination
from nexy.coordination.redis import RedisCoordination

__all__ = [
    "Claim",
    "Coordination",
    "InterruptHandler",
    "LocalCoordination",
    "RedisCoordination",
    "build_coordination",
]


def build_coordination(settings: CoordinationSettings, limits: LimitsSettings) -> Coordination:
    if settings.redis_url.get_secret_value():
        return RedisCoordination(settings, limits)
    return LocalCoordination(limits)
