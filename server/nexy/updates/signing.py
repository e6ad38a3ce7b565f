"""Ed25519 keys and artifact signatures in Sparkle's formats.

The private key file holds the raw 32-byte seed in base64, as Sparkle's ``generate_keys -x``
exports it, so one key works with both this server's CLI and Sparkle's own ``sign_update``.
Public keys and signatures are base64 too: the public key is what the app's ``SUPublicEDKey``
and ``updates.public_key`` hold, the signature what ``sparkle:edSignature`` carries.
"""

from __future__ import annotations

import base64
import binascii
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_KEY_BYTES = 32


class SigningError(ValueError):
    """A key or signature cannot be used; the message says which and why."""


def write_new_private_key(path: Path) -> Ed25519PrivateKey:
    """Generate a key and write its seed to a new 0600 file; never overwrite an existing one."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    try:
        # O_EXCL makes "refuse to overwrite" atomic: no window between a check and the write.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningError(f"{path} already exists; refusing to overwrite a key") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may only narrow the mode, but be explicit
        os.write(fd, base64.b64encode(seed) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key file (base64 of the 32-byte seed)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise SigningError(f"{path}: not a base64 Ed25519 private key") from None
    seed = _decode(text, f"{path}: not a base64 Ed25519 private key")
    if len(seed) != _KEY_BYTES:
        raise SigningError(f"{path}: {len(seed)} bytes, an Ed25519 private key seed has 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The private key's public half in base64 (Sparkle's SUPublicEDKey)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Decode a base64 Ed25519 public key."""
    raw = _decode(text.strip(), "public key: not valid base64")
    if len(raw) != _KEY_BYTES:
        raise SigningError(f"public key: {len(raw)} bytes, an Ed25519 public key has 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_file(path: Path, key: Ed25519PrivateKey) -> str:
    """Sign the file's raw bytes, as Sparkle's sign_update does; the signature in base64."""
    with _mapped(path) as data:
        return base64.b64encode(key.sign(data)).decode("ascii")


def verify_file(path: Path, signature: str, public_key: Ed25519PublicKey) -> bool:
    """True when ``signature`` (base64) is the key's signature over the file's bytes."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    with _mapped(path) as data:
        try:
            public_key.verify(raw, data)
        except InvalidSignature:
            return False
    return True


@contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """The file's bytes, memory-mapped read-only.

    Ed25519 hashes the whole message twice, so it cannot take a file in chunks; a mapping lets
    the kernel page a large artifact in and out instead of copying all of it onto the heap.
    """
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield memoryview(b"")  # an empty file cannot be mapped
            return
        # The view is released before the mapping closes, which refuses while views exist.
        with (
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapping,
            memoryview(mapping) as view,
        ):
            yield view


def _decode(text: str, message: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SigningError(message) from None
