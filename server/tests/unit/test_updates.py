"""The update feed: keys, publishing, Sparkle appcasts, download-name safety and the CLI."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nexy.components import State
from nexy.config import UpdatesSettings
from nexy.updates.feed import SPARKLE_NS, UpdateFeed
from nexy.updates.manifest import Manifest, ManifestError, read_manifest, write_manifest
from nexy.updates.release import (
    ReleaseError,
    add_release_commands,
    keygen,
    publish,
    run_release_command,
)
from nexy.updates.signing import SigningError, load_private_key, sign_file, verify_file

SP = f"{{{SPARKLE_NS}}}"
ARTIFACT = bytes(range(256)) * 40


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "keys" / "ed25519.key"
    path.parent.mkdir()
    return path, keygen(path)


@pytest.fixture
def settings(tmp_path: Path) -> UpdatesSettings:
    return UpdatesSettings(folder=tmp_path / "updates")


def artifact(tmp_path: Path, name: str = "Nexy.dmg", data: bytes = ARTIFACT) -> Path:
    path = tmp_path / "build" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def release(tmp_path, settings, key, version="1.0", build="1", channel="stable", name=None):
    source = artifact(tmp_path, name or f"Nexy-{version}.dmg", ARTIFACT + build.encode())
    return publish(source, version, build, channel, key[0], settings)


def items(xml: str) -> list[ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "rss" and root.find("channel") is not None
    return root.findall("channel/item")


def parser() -> argparse.ArgumentParser:
    built = argparse.ArgumentParser(prog="nexy-server")
    add_release_commands(built.add_subparsers(dest="command", required=True))
    return built


# --- keys and signatures ---------------------------------------------------------------


def test_keygen_writes_a_private_0600_seed_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "signing.key"
    public = keygen(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(base64.b64decode(out.read_text().strip(), validate=True)) == 32
    assert len(base64.b64decode(public, validate=True)) == 32
    before = out.read_bytes()
    with pytest.raises(SigningError, match="already exists"):
        keygen(out)
    assert out.read_bytes() == before


def test_signatures_cover_the_raw_bytes(tmp_path, key):
    private = load_private_key(key[0])
    public = private.public_key()
    path = artifact(tmp_path)
    signature = sign_file(path, private)
    public.verify(base64.b64decode(signature), ARTIFACT)  # what Sparkle checks
    assert verify_file(path, signature, public)
    path.write_bytes(ARTIFACT[:-1] + b"\x00")
    assert not verify_file(path, signature, public)
    assert not verify_file(path, "not base64!", public)
    empty = artifact(tmp_path, "empty.zip", b"")
    assert verify_file(empty, sign_file(empty, private), public)


# --- publishing -----------------------------------------------------------------------


def test_publish_copies_signs_and_writes_the_manifest(tmp_path, settings, key):
    source = artifact(tmp_path)
    manifest = publish(source, "1.2.3", "42", "stable", key[0], settings)
    served = settings.folder / "downloads" / "Nexy.dmg"
    assert served.read_bytes() == ARTIFACT
    assert read_manifest(settings.folder, "stable") == manifest
    stored = json.loads((settings.folder / "manifest-stable.json").read_text())
    assert stored["version"] == "1.2.3" and stored["build"] == "42"
    assert stored["file"] == "Nexy.dmg" and stored["length"] == len(ARTIFACT)
    assert stored["sha256"] == hashlib.sha256(ARTIFACT).hexdigest()
    assert stored["minimum_system_version"] == "13.0"
    assert stored["published_at"].endswith("+00:00")
    assert sorted(p.name for p in settings.folder.iterdir()) == [
        "downloads",
        "manifest-stable.json",
    ]
    assert [p.name for p in served.parent.iterdir()] == ["Nexy.dmg"]  # no temporary left


def test_published_artifacts_are_immutable(tmp_path, settings, key):
    publish(artifact(tmp_path), "1.0", "1", "beta", key[0], settings)
    publish(artifact(tmp_path), "1.0", "1", "stable", key[0], settings)  # promotion: same bytes
    changed = artifact(tmp_path, data=ARTIFACT + b"!")
    with pytest.raises(ReleaseError, match="different content"):
        publish(changed, "1.1", "2", "stable", key[0], settings)
    assert (settings.folder / "downloads" / "Nexy.dmg").read_bytes() == ARTIFACT
    assert read_manifest(settings.folder, "stable").build == "1"


def test_publish_refuses_a_key_that_does_not_match_the_configured_one(tmp_path, key):
    other = keygen(tmp_path / "other.key")
    settings = UpdatesSettings(folder=tmp_path / "updates", public_key=other)
    with pytest.raises(ReleaseError, match="does not match"):
        publish(artifact(tmp_path), "1.0", "1", "stable", key[0], settings)
    assert read_manifest(settings.folder, "stable") is None


def test_manifest_errors_name_the_file_and_field(settings):
    settings.folder.mkdir()
    path = settings.folder / "manifest-stable.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="manifest-stable.json: not valid JSON"):
        read_manifest(settings.folder, "stable")
    path.write_text(json.dumps({"version": "1.0"}))
    with pytest.raises(ManifestError, match="missing build"):
        read_manifest(settings.folder, "stable")
    good = Manifest(
        "stable",
        "1.0",
        "1",
        "a.dmg",
        1,
        "0" * 64,
        base64.b64encode(bytes(64)).decode(),
        "2025-01-01T00:00:00+00:00",
        "13.0",
    )
    write_manifest(settings.folder, good)
    assert read_manifest(settings.folder, "stable") == good
    for field, value in (("length", True), ("build", "1a"), ("file", "../x"), ("sha256", "ab")):
        path.write_text(json.dumps({**good.to_dict(), field: value}))
        with pytest.raises(ManifestError, match=field):
            read_manifest(settings.folder, "stable")
    with pytest.raises(ManifestError, match="channel"):
        read_manifest(settings.folder, "nightly")


# --- the feed -------------------------------------------------------------------------


async def test_appcast_offers_the_release_with_a_verifiable_signature(tmp_path, settings, capsys):
    keyfile = tmp_path / "cli.key"
    assert (
        run_release_command(
            parser().parse_args(["release", "keygen", "--out", str(keyfile)]), settings
        )
        == 0
    )
    public = capsys.readouterr().out.split()[-1]
    publish(artifact(tmp_path), "0.1.0.1", "7", "stable", keyfile, settings)
    feed = UpdateFeed(settings)
    await feed.start()
    [item] = items(feed.appcast("stable", "http://127.0.0.1:8080"))
    enclosure = item.find("enclosure")
    assert enclosure.get("url") == "http://127.0.0.1:8080/updates/downloads/Nexy.dmg"
    assert enclosure.get("length") == str(len(ARTIFACT))
    assert enclosure.get("type") == "application/octet-stream"
    assert enclosure.get(f"{SP}version") == "7"
    assert enclosure.get(f"{SP}shortVersionString") == "0.1.0.1"
    assert item.findtext(f"{SP}minimumSystemVersion") == "13.0"
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
    key.verify(base64.b64decode(enclosure.get(f"{SP}edSignature")), ARTIFACT)


async def test_configured_public_base_url_wins(tmp_path, key):
    settings = UpdatesSettings(folder=tmp_path / "u", public_base_url="https://cdn.example/")
    publish(artifact(tmp_path, "Nexy 1.dmg"), "1.0", "1", "stable", key[0], settings)
    feed = UpdateFeed(settings)
    await feed.start()
    [item] = items(feed.appcast("stable", "http://internal:8080"))
    assert item.find("enclosure").get("url") == "https://cdn.example/updates/downloads/Nexy%201.dmg"


async def test_an_empty_feed_is_valid_and_has_no_item(settings):
    feed = UpdateFeed(settings)
    await feed.start()
    assert (settings.folder / "downloads").is_dir()
    for channel in ("stable", "beta"):
        assert items(feed.appcast(channel, "http://h")) == []
        assert feed.manifest(channel) is None
    assert feed.status().state is State.READY
    health = feed.health()
    assert health["status"] == "ok" and health["channels"] == {"stable": None, "beta": None}
    assert health["server_version"] == "0.1.0.1"


async def test_beta_offers_the_newest_of_beta_and_stable(tmp_path, settings, key):
    feed = UpdateFeed(settings)
    await feed.start()

    def offered(channel):
        [item] = items(feed.appcast(channel, "http://h"))
        return item.find("enclosure").get(f"{SP}version")

    release(tmp_path, settings, key, "1.0", "10", "stable")
    assert offered("stable") == offered("beta") == "10"
    release(tmp_path, settings, key, "1.1b1", "11", "beta")
    assert (offered("stable"), offered("beta")) == ("10", "11")
    release(tmp_path, settings, key, "1.2", "12", "stable")
    assert offered("beta") == "12"
    assert feed.health()["channels"]["beta"]["from_channel"] == "stable"
    with pytest.raises(ManifestError):
        feed.appcast("nightly", "http://h")


async def test_a_wrong_public_key_degrades_the_feed_and_withholds_the_release(tmp_path, key):
    settings = UpdatesSettings(folder=tmp_path / "u")
    release(tmp_path, settings, key, "1.0", "1", "stable")
    wrong = UpdatesSettings(folder=settings.folder, public_key=keygen(tmp_path / "wrong.key"))
    feed = UpdateFeed(wrong)
    await feed.start()
    status = feed.status()
    assert status.state is State.DEGRADED and "does not verify" in status.reason
    assert items(feed.appcast("stable", "http://h")) == []
    assert feed.health()["status"] == "degraded"
    right = UpdateFeed(UpdatesSettings(folder=settings.folder, public_key=key[1]))
    await right.start()
    assert right.status().state is State.READY
    garbled = UpdateFeed(UpdatesSettings(folder=settings.folder, public_key="abc"))
    await garbled.start()
    assert "public_key" in garbled.status().reason


async def test_a_missing_artifact_or_corrupt_manifest_degrades(tmp_path, settings, key):
    manifest = release(tmp_path, settings, key)
    feed = UpdateFeed(settings)
    await feed.start()
    (settings.folder / "downloads" / manifest.file).unlink()
    assert "missing" in feed.status().reason
    (settings.folder / "manifest-beta.json").write_text("[]")
    assert "manifest-beta.json" in feed.status().reason
    assert items(feed.appcast("beta", "http://h")) == []


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "/etc/passwd",
        ".hidden",
        "..",
        ".",
        "",
        "a\\b",
        "a\x00b",
        unquote("%2e%2e"),
        unquote("%2e%2e%2fmanifest-stable.json"),
        "..%2f..%2fetc",
        "missing.dmg",
    ],
)
async def test_download_path_rejects_anything_but_a_published_file(settings, name):
    feed = UpdateFeed(settings)
    await feed.start()
    (settings.folder / "downloads" / ".hidden").write_text("secret")
    (settings.folder / "manifest-stable.json").write_text("{}")
    assert feed.download_path(name) is None


async def test_download_path_follows_only_symlinks_that_stay_inside(tmp_path, settings):
    feed = UpdateFeed(settings)
    await feed.start()
    downloads = settings.folder / "downloads"
    (downloads / "Nexy.dmg").write_bytes(ARTIFACT)
    (tmp_path / "outside.txt").write_text("secret")
    (downloads / "escape.dmg").symlink_to(tmp_path / "outside.txt")
    (downloads / "alias.dmg").symlink_to("Nexy.dmg")
    (downloads / "sub").mkdir()
    assert feed.download_path("Nexy.dmg") == (downloads / "Nexy.dmg").resolve()
    assert feed.download_path("alias.dmg") == (downloads / "Nexy.dmg").resolve()
    assert feed.download_path("escape.dmg") is None
    assert feed.download_path("sub") is None


# --- the CLI --------------------------------------------------------------------------


def test_cli_keygen_prints_the_public_key_last(tmp_path, settings, capsys):
    out = tmp_path / "k"
    args = parser().parse_args(["release", "keygen", "--out", str(out)])
    assert run_release_command(args, settings) == 0
    public = capsys.readouterr().out.split()[-1]
    private = load_private_key(out).public_key()
    assert Ed25519PublicKey.from_public_bytes(base64.b64decode(public)) is not None
    assert private.public_bytes_raw() == base64.b64decode(public)
    assert run_release_command(args, settings) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err


def test_cli_publish_and_its_errors(tmp_path, settings, key, capsys):
    source = artifact(tmp_path)

    def run(*extra):
        argv = ["release", "publish", str(source), "--key", str(key[0]), *extra]
        return run_release_command(parser().parse_args(argv), settings)

    assert run("--version", "1.0", "--build", "3", "--channel", "beta") == 0
    assert "build 3" in capsys.readouterr().out
    assert read_manifest(settings.folder, "beta").build == "3"
    for extra in (
        ("--version", "1.0", "--build", "three"),
        ("--version", "no spaces", "--build", "4"),
        ("--version", "1.0", "--build", "4", "--key", str(tmp_path / "absent.key")),
        ("--version", "1.0", "--build", "4", "--key", str(source)),
    ):
        assert run(*extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("nexy-server: release publish: ") and err.count("\n") == 1
    source.unlink()
    assert run("--version", "1.0", "--build", "4") == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(
            [
                "release",
                "publish",
                "x",
                "--version",
                "1",
                "--build",
                "1",
                "--key",
                "k",
                "--channel",
                "nightly",
            ]
        )


async def test_a_feed_names_itself_from_its_bound_address(tmp_path, caplog):
    feed = UpdateFeed(UpdatesSettings(folder=tmp_path / "u"))
    feed.serve_at("https", "10.1.2.3", 8443)
    assert feed.origin == "https://10.1.2.3:8443"
    feed.serve_at("http", "::1", 8080)
    assert feed.origin == "http://[::1]:8080"
    assert not caplog.records
    feed.serve_at("http", "0.0.0.0", 8080)  # every interface: no address is the public one
    assert feed.origin.endswith(":8080") and "0.0.0.0" not in feed.origin
    [warning] = [r for r in caplog.records if "public_base_url" in r.getMessage()]
    assert warning.levelname == "WARNING"


async def test_a_configured_public_base_url_is_never_replaced(tmp_path):
    settings = UpdatesSettings(folder=tmp_path / "u", public_base_url="https://cdn.example/")
    feed = UpdateFeed(settings)
    feed.serve_at("http", "0.0.0.0", 8080)
    assert feed.origin == "https://cdn.example"
