"""The one version source: the VERSION file at the repository root (else package metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

_VERSION_FILE = Path(__file__).resolve().parents[2] / "VERSION"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: str  # e.g. "0.1.0.1": what every surface reports as latest_version
    # The full version too, as the reference server reports it: its monitoring requires
    # /health's latest_build == latest_version. Dotted numbers, so Sparkle can compare it.
    build: str


@cache
def version_info() -> VersionInfo:
    """Read the version once; the checkout's VERSION wins over installed metadata."""
    if _VERSION_FILE.is_file():
        version = _VERSION_FILE.read_text(encoding="utf-8").strip()
    else:
        version = metadata.version("nexy-server")
    return VersionInfo(version=version, build=version)
