"""The update feed component: what each channel offers, as a Sparkle appcast and as JSON.

Manifests are re-read on every request rather than cached at start, so a ``release publish``
run against the live folder is offered at the next poll without a restart; they are a few
hundred bytes and clients poll hourly. When ``updates.public_key`` is configured, ``start()``
checks every published artifact's signature against it: a release that fails is withheld
(Sparkle would download it, reject it and show the user an error every hour) and the feed
reports DEGRADED until a new release replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nexy.components import READY, ComponentStatus, State
from nexy.config import UpdatesSettings
from nexy.updates.manifest import (
    CHANNELS,
    Manifest,
    ManifestError,
    build_key,
    check_channel,
    is_plain_file_name,
    read_manifest,
)
from nexy.updates.signing import SigningError, load_public_key, verify_file
from nexy.version import version_info

log = logging.getLogger(__name__)

SPARKLE_NS = "http://www.andymatuschak.org/xml-namespaces/sparkle"
DOWNLOADS_PATH = "/updates/downloads"
APPCAST_PATHS = {"stable": "/updates/appcast.xml", "beta": "/updates/appcast-beta.xml"}
# Which channels' releases each feed may offer: beta testers also get a newer stable build.
_SOURCES = {"stable": ("stable",), "beta": ("stable", "beta")}
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})

_Identity = tuple[str, str, str]


def _identity(manifest: Manifest) -> _Identity:
    """What a signature check vouched for; a republished release is a different identity."""
    return (manifest.file, manifest.sha256, manifest.ed_signature)


class UpdateFeed:
    """Serves the published releases of the updates folder; a registry component."""

    def __init__(self, settings: UpdatesSettings) -> None:
        self.settings = settings
        self.folder = settings.folder
        self.downloads = settings.folder / "downloads"
        self._withheld: dict[_Identity, str] = {}
        self._key_problem = ""
        # scheme://host:port of this server, set once bound; never the request's Host header,
        # which a client (or a cache between) could set to any site to send downloads there.
        self.origin = settings.public_base_url.rstrip("/")

    def serve_at(self, scheme: str, host: str, port: int) -> None:
        """Name this server in feeds from its bound address, unless public_base_url is set."""
        if self.settings.public_base_url:
            return
        if host in _WILDCARDS:
            # Bound to every interface: no address is the one clients use; the host name is
            # the best guess, and an operator must confirm it.
            host = socket.gethostname()
            log.warning(
                "updates.public_base_url is empty and the server listens on every interface: "
                "the update feed names itself %s://%s:%d; set updates.public_base_url to the "
                "address clients reach",
                scheme,
                host,
                port,
            )
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal
        self.origin = f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        """Create downloads/ and check published signatures against the configured key."""
        self.downloads.mkdir(parents=True, exist_ok=True)
        self._withheld.clear()
        self._key_problem = ""
        if not self.settings.public_key:
            return
        try:
            key = load_public_key(self.settings.public_key)
        except SigningError as exc:
            # Serve anyway: clients check signatures with their own embedded key.
            self._key_problem = f"updates.public_key is unusable: {exc}"
            log.warning("%s", self._key_problem)
            return
        for channel in CHANNELS:
            manifest, _ = self._own_release(channel)
            if manifest is None:
                continue  # nothing published, or status() reports why it is unusable
            reason = await asyncio.to_thread(self._signature_problem, manifest, key)
            if reason:
                self._withheld[_identity(manifest)] = reason
                log.warning("withholding a release: %s", reason)

    def status(self) -> ComponentStatus:
        """READY, or DEGRADED naming every release that cannot be offered."""
        problems = self._problems()
        return ComponentStatus(State.DEGRADED, "; ".join(problems)) if problems else READY

    async def close(self) -> None:
        """Nothing to release: the feed holds no open files or connections."""

    def manifest(self, channel: str) -> Manifest | None:
        """The release ``channel`` offers (beta: the newer of beta and stable), if any."""
        offered = [
            manifest
            for source in _SOURCES[check_channel(channel)]
            if (manifest := self._own_release(source)[0]) is not None
        ]
        # max() keeps the first of equals, so a build promoted to stable is offered as stable.
        return max(offered, key=lambda manifest: build_key(manifest.build), default=None)

    def download_url(self, manifest: Manifest, base_url: str) -> str:
        """Where clients fetch the artifact: the configured public URL, else ``base_url``."""
        base = (self.settings.public_base_url or base_url).rstrip("/")
        return f"{base}{DOWNLOADS_PATH}/{quote(manifest.file)}"

    def appcast(self, channel: str, base_url: str) -> str:
        """The channel's Sparkle RSS feed; ``base_url`` is this server's scheme://host:port."""
        manifest = self.manifest(channel)
        title = self.settings.title
        rss = ET.Element("rss", {"version": "2.0", "xmlns:sparkle": SPARKLE_NS})
        feed = ET.SubElement(rss, "channel")
        _text(feed, "title", f"{title} updates ({channel})")
        _text(feed, "link", base_url.rstrip("/") + APPCAST_PATHS[channel])
        _text(feed, "description", f"{title} releases on the {channel} channel")
        _text(feed, "language", "en")
        if manifest is not None:
            _item(feed, title, manifest, self.download_url(manifest, base_url))
        ET.indent(rss)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(rss, "unicode") + "\n"

    def download_path(self, name: str) -> Path | None:
        """The artifact called ``name`` in downloads/, or None for anything else.

        Only a plain, visible file name is looked up, and its resolved path must still lie in
        downloads/, so neither ``..`` nor a symlink pointing outside can reach other files.
        """
        if not is_plain_file_name(name):
            return None
        try:
            root = self.downloads.resolve(strict=True)
            path = (root / name).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
            return None
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def health(self) -> dict[str, Any]:
        """Status, the release each channel offers and this server's own version."""
        info = version_info()
        problems = self._problems()
        channels: dict[str, dict[str, Any] | None] = {}
        for channel in CHANNELS:
            manifest = self.manifest(channel)
            channels[channel] = None
            if manifest is not None:
                channels[channel] = {
                    "version": manifest.version,
                    "build": manifest.build,
                    "from_channel": manifest.channel,
                    "file": manifest.file,
                    "published_at": manifest.published_at,
                }
        return {
            "status": "degraded" if problems else "ok",
            "reasons": problems,
            "server_version": info.version,
            "server_build": info.build,
            "channels": channels,
        }

    def _own_release(self, channel: str) -> tuple[Manifest | None, str]:
        """The channel's own manifest if it can be offered, else None and the reason.

        The reason is empty when nothing was published, which is not a problem.
        """
        try:
            manifest = read_manifest(self.folder, channel)
        except ManifestError as exc:
            return None, str(exc)
        if manifest is None:
            return None, ""
        withheld = self._withheld.get(_identity(manifest))
        if withheld:
            return None, withheld
        try:
            size = (self.downloads / manifest.file).stat().st_size
        except OSError:
            return None, f"{channel}: downloads/{manifest.file} is missing"
        if size != manifest.length:
            message = f"downloads/{manifest.file} has {size} bytes, the manifest says"
            return None, f"{channel}: {message} {manifest.length}"
        return manifest, ""

    def _problems(self) -> list[str]:
        reasons = [self._own_release(channel)[1] for channel in CHANNELS]
        return [reason for reason in [self._key_problem, *reasons] if reason]

    def _signature_problem(self, manifest: Manifest, key: Ed25519PublicKey) -> str:
        path = self.downloads / manifest.file
        try:
            valid = verify_file(path, manifest.ed_signature, key)
        except OSError as exc:
            return f"{manifest.channel}: downloads/{manifest.file} cannot be read: {exc.strerror}"
        if valid:
            return ""
        return (
            f"{manifest.channel}: the signature of {manifest.file} (build {manifest.build}) "
            "does not verify with updates.public_key"
        )


def _item(feed: ET.Element, title: str, manifest: Manifest, url: str) -> None:
    """One release as a Sparkle item: the enclosure carries what Sparkle verifies."""
    item = ET.SubElement(feed, "item")
    _text(item, "title", f"{title} {manifest.version}")
    published = datetime.fromisoformat(manifest.published_at).astimezone(UTC)
    _text(item, "pubDate", format_datetime(published, usegmt=True))
    # Sparkle 2 reads these as elements; the enclosure attributes serve Sparkle 1 as well.
    _text(item, "sparkle:version", manifest.build)
    _text(item, "sparkle:shortVersionString", manifest.version)
    _text(item, "sparkle:minimumSystemVersion", manifest.minimum_system_version)
    enclosure = {
        "url": url,
        "length": str(manifest.length),
        "type": "application/octet-stream",
        "sparkle:version": manifest.build,
        "sparkle:shortVersionString": manifest.version,
        "sparkle:edSignature": manifest.ed_signature,
    }
    ET.SubElement(item, "enclosure", enclosure)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text
