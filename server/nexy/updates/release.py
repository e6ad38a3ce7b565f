"""``nexy-server release keygen|publish``: make a signing key, publish a signed release.

Publishing copies the artifact into ``<folder>/downloads/``, signs the copy (what is signed is
exactly what is served) and then replaces the channel's manifest, so a running server offers
the release at the next poll and never a manifest whose artifact is not in place yet.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from nexy.config import UpdatesSettings
from nexy.updates.manifest import (
    CHANNELS,
    Manifest,
    check_build,
    check_channel,
    check_version,
    is_plain_file_name,
    write_manifest,
)
from nexy.updates.signing import (
    load_private_key,
    load_public_key,
    public_key_b64,
    sign_file,
    write_new_private_key,
)

_CHUNK = 1024 * 1024


class ReleaseError(ValueError):
    """A release cannot be published as asked; the message says why."""


def keygen(out: Path) -> str:
    """Write a new private key to ``out`` (0600, never overwriting); return the public key."""
    return public_key_b64(write_new_private_key(out))


def publish(
    artifact: Path, version: str, build: str, channel: str, key: Path, settings: UpdatesSettings
) -> Manifest:
    """Copy, sign and announce ``artifact`` as the channel's current release."""
    check_channel(channel)
    check_version(version)
    check_build(build)
    name = artifact.name
    if not is_plain_file_name(name):
        raise ReleaseError(f"{artifact}: the file name must be plain and visible to be served")
    if not artifact.is_file():
        raise ReleaseError(f"{artifact}: no such file")
    private = load_private_key(key)
    if settings.public_key:
        # Fail here rather than let clients download a release they will reject.
        configured = load_public_key(settings.public_key).public_bytes_raw()
        if configured != private.public_key().public_bytes_raw():
            raise ReleaseError(f"{key} does not match updates.public_key; clients would reject it")
    downloads = settings.folder / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    length, sha256 = _install(artifact, downloads / name)
    manifest = Manifest(
        channel=channel,
        version=version,
        build=build,
        file=name,
        length=length,
        sha256=sha256,
        ed_signature=sign_file(downloads / name, private),
        published_at=datetime.now(UTC).isoformat(timespec="seconds"),
        minimum_system_version=settings.minimum_system_version,
    )
    write_manifest(settings.folder, manifest)
    return manifest


def _install(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` via a hidden temporary file; return length and sha256.

    A published artifact is immutable: clients resume partial downloads with Range requests
    and another channel's manifest may carry its signature, so an existing file of the same
    name is accepted only with identical bytes.
    """
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as handle:
        temporary = Path(handle.name)
        try:
            with source.open("rb") as reader:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    try:
        length = temporary.stat().st_size
        if target.exists() and _sha256(target) != digest.hexdigest():
            raise ReleaseError(
                f"downloads/{target.name} already exists with different content; "
                "published artifacts are immutable, give this one a new name"
            )
        if not target.exists():
            os.chmod(temporary, 0o644)  # mkstemp makes 0600; the server may be another user
            os.replace(temporary, target)
        return length, digest.hexdigest()
    finally:
        temporary.unlink(missing_ok=True)  # a no-op once the rename succeeded


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def add_release_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``release keygen`` and ``release publish`` to the nexy-server command parser."""
    release = subparsers.add_parser("release", help="sign and publish desktop-app updates")
    commands = release.add_subparsers(dest="release_command", required=True)
    keygen_cmd = commands.add_parser("keygen", help="create an Ed25519 signing key")
    keygen_cmd.add_argument("--out", type=Path, required=True, help="private key file to create")
    publish_cmd = commands.add_parser("publish", help="sign an artifact and offer it on a channel")
    publish_cmd.add_argument("artifact", type=Path, help="the app archive (.dmg, .zip, …)")
    publish_cmd.add_argument("--version", required=True, help="display version, e.g. 1.2.3")
    publish_cmd.add_argument("--build", required=True, help="build number clients compare")
    publish_cmd.add_argument("--channel", choices=CHANNELS, default="stable")
    publish_cmd.add_argument("--key", type=Path, required=True, help="private key file")
    for command in (keygen_cmd, publish_cmd):
        # nexy-server's main() loads the settings before dispatching every command.
        command.add_argument("--config", help="YAML config file (or NEXY_CONFIG)")


def run_release_command(args: argparse.Namespace, settings: UpdatesSettings) -> int:
    """Run one release command: 0 on success, 2 with a one-line message on bad input."""
    try:
        if args.release_command == "keygen":
            public = keygen(args.out)
            print(f"private key written to {args.out} (mode 0600); keep it secret and backed up")
            print(f"public key for updates.public_key and the app's SUPublicEDKey: {public}")
            return 0
        manifest = publish(
            args.artifact, args.version, args.build, args.channel, args.key, settings
        )
    except (ValueError, OSError) as exc:  # the process edge: one clear line, no stack trace
        print(f"nexy-server: release {args.release_command}: {_describe(exc)}", file=sys.stderr)
        return 2
    print(
        f"published {settings.title} {manifest.version} (build {manifest.build}) "
        f"on {manifest.channel}: downloads/{manifest.file}, {manifest.length} bytes, "
        f"sha256 {manifest.sha256}"
    )
    return 0


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc)
    return " ".join(text.split())  # one line, whatever the message held
