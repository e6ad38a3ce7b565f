"""The desktop client's update feed: signed releases, Sparkle appcasts and artifact downloads.

``release`` publishes (CLI side), ``feed`` serves what was published (server side); the two
meet only in the updates folder: ``manifest-<channel>.json`` files and ``downloads/``.
"""

from __future__ import annotations

from nexy.updates.feed import UpdateFeed
from nexy.updates.manifest import CHANNELS, Manifest, ManifestError

__all__ = ["CHANNELS", "Manifest", "ManifestError", "UpdateFeed"]
