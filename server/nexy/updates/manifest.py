"""One channel's current release: ``<folder>/manifest-<channel>.json``, validated and atomic.

The manifest is the only hand-off between ``nexy-server release publish`` and the running
server, so it is validated field by field on every read (a hand-edited or truncated file must
produce a clear error, never a broken appcast) and replaced atomically on every write (a
poll racing a publish sees the old manifest or the new one, never half of either).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

CHANNELS = ("stable", "beta")

_BUILD = re.compile(r"[0-9]+(\.[0-9]+)*")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
_SYSTEM_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# A plain file name: no separators, no control characters, not hidden (which also rules out
# "." and ".."); the temporary files publish writes are hidden, so they are never served.
_FILE_NAME = re.compile(r"[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,254}")


class ManifestError(ValueError):
    """A manifest or one of its fields is invalid; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """The release a channel currently offers."""

    channel: str
    version: str  # Sparkle's shortVersionString, shown to the user
    build: str  # Sparkle's version: the dotted number clients compare
    file: str  # a plain name inside <folder>/downloads/
    length: int
    sha256: str
    ed_signature: str  # base64 Ed25519 signature over the artifact's raw bytes
    published_at: str  # ISO 8601 with a UTC offset
    minimum_system_version: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to disk and served by /updates/manifest.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, channel: str) -> Manifest:
        """Validate a decoded manifest for ``channel``; raise ManifestError naming the field."""
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        names = [name for name in cls.__dataclass_fields__ if name != "channel"]
        missing = [name for name in names if name not in data]
        if missing:
            raise ManifestError(f"manifest is missing {', '.join(missing)}")
        if data.get("channel", channel) != channel:
            raise ManifestError(f"channel: {data['channel']!r} in the {channel} manifest")
        for name in names:
            expected = int if name == "length" else str
            # bool is an int subclass; a length of `true` is a corrupt file, not 1 byte
            value = data[name]
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ManifestError(f"{name}: expected {expected.__name__}, got {value!r}")
        manifest = cls(channel=channel, **{name: data[name] for name in names})
        manifest.validate()
        return manifest

    def validate(self) -> None:
        """Raise ManifestError for the first field out of its format."""
        check_channel(self.channel)
        check_version(self.version)
        check_build(self.build)
        check_file_name(self.file)
        _check_system_version(self.minimum_system_version)
        if self.length < 0:
            raise ManifestError(f"length: {self.length} is negative")
        if not _SHA256.fullmatch(self.sha256):
            raise ManifestError("sha256: expected 64 lowercase hex digits")
        _check_signature(self.ed_signature)
        _check_timestamp(self.published_at)


def check_channel(channel: str) -> str:
    """Return ``channel`` if it is a known channel, else raise ManifestError."""
    if channel not in CHANNELS:
        raise ManifestError(f"channel: {channel!r} is not one of {', '.join(CHANNELS)}")
    return channel


def check_version(version: str) -> str:
    """A display version: letters, digits and ``.+_-``, e.g. ``0.1.0.1`` or ``1.2-beta``."""
    if not _VERSION.fullmatch(version):
        raise ManifestError(f"version: {version!r} is not like 1.2.3 (letters, digits, .+_-)")
    return version


def check_build(build: str) -> str:
    """A build number Sparkle can compare: dotted non-negative integers, e.g. ``42``."""
    if not _BUILD.fullmatch(build) or len(build) > 64:
        raise ManifestError(f"build: {build!r} is not a number like 42 or 1.2.3")
    return build


def check_file_name(name: str) -> str:
    """A plain, visible file name with no path in it."""
    if not is_plain_file_name(name):
        raise ManifestError(f"file: {name!r} is not a plain file name")
    return name


def is_plain_file_name(name: str) -> bool:
    """True for a visible file name with no separators or control characters."""
    return bool(_FILE_NAME.fullmatch(name))


def build_key(build: str) -> tuple[int, ...]:
    """The sort key of a build number: "1.10" is newer than "1.9"."""
    return tuple(int(part) for part in check_build(build).split("."))


def manifest_path(folder: Path, channel: str) -> Path:
    """Where the channel's manifest lives."""
    return folder / f"manifest-{check_channel(channel)}.json"


def read_manifest(folder: Path, channel: str) -> Manifest | None:
    """The channel's manifest, None when nothing was published; ManifestError when invalid."""
    path = manifest_path(folder, channel)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read: {exc}") from exc
    try:
        return Manifest.from_dict(json.loads(text), channel)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from exc
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from exc


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Validate and write the manifest atomically (temporary file, fsync, rename)."""
    manifest.validate()
    path = manifest_path(folder, manifest.channel)
    text = json.dumps(manifest.to_dict(), indent=2) + "\n"
    # The temporary file sits in the same folder so the rename cannot cross file systems.
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=folder, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as handle:
        temporary = Path(handle.name)
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    try:
        # mkstemp makes 0600 files; the server may run as another user than the publisher.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # a no-op once the rename succeeded
    return path


def _check_system_version(value: str) -> None:
    if not _SYSTEM_VERSION.fullmatch(value):
        raise ManifestError(f"minimum_system_version: {value!r} is not like 13.0")


def _check_signature(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ManifestError("ed_signature: not valid base64") from exc
    if len(raw) != 64:
        raise ManifestError(f"ed_signature: {len(raw)} bytes, an Ed25519 signature has 64")


def _check_timestamp(value: str) -> None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ManifestError(f"published_at: {value!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise ManifestError(f"published_at: {value!r} has no UTC offset")
