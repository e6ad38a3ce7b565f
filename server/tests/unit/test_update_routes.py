"""The /updates/* HTTP routes over a real aiohttp server: feeds, manifests, ranged downloads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from nexy.config import UpdatesSettings
from nexy.transport.http.updates import update_routes
from nexy.updates.feed import SPARKLE_NS, UpdateFeed
from nexy.updates.release import keygen, publish

ARTIFACT = bytes(range(256)) * 8


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = UpdatesSettings(folder=tmp_path / "updates")
    key = tmp_path / "signing.key"
    keygen(key)
    source = tmp_path / "Nexy.dmg"
    source.write_bytes(ARTIFACT)
    publish(source, "1.0", "5", "stable", key, settings)
    feed = UpdateFeed(settings)
    await feed.start()
    (settings.folder / "downloads" / ".hidden").write_text("secret")
    (settings.folder / "downloads" / "Nexy.dmg.gz").write_bytes(b"another artifact")
    (tmp_path / "outside.txt").write_text("secret")
    (settings.folder / "downloads" / "escape.dmg").symlink_to(tmp_path / "outside.txt")
    app = web.Application()
    app.add_routes(update_routes(feed))
    async with TestClient(TestServer(app)) as test_client:
        feed.serve_at("http", "127.0.0.1", test_client.port)
        yield test_client


async def test_appcast_is_xml_pointing_at_this_server(client):
    for path in (
        "/updates/appcast.xml",
        "/updates/appcast-beta.xml",
        "/updates/appcast.xml?channel=beta",
    ):
        response = await client.get(path)
        assert response.status == 200
        assert response.content_type == "application/xml"
        [enclosure] = ET.fromstring(await response.text()).iter("enclosure")
        url = URL(enclosure.get("url"))
        assert url.path == "/updates/downloads/Nexy.dmg" and url.port == client.port
        assert enclosure.get(f"{{{SPARKLE_NS}}}version") == "5"
    assert (await client.get("/updates/appcast.xml?channel=nightly")).status == 400


async def test_download_serves_the_exact_bytes(client):
    gzip = {"Accept-Encoding": "gzip, br"}  # must not swap in the Nexy.dmg.gz sibling
    response = await client.get("/updates/downloads/Nexy.dmg", headers=gzip)
    assert response.status == 200
    assert await response.read() == ARTIFACT
    assert "Content-Encoding" not in response.headers
    assert response.headers["Accept-Ranges"] == "bytes"
    head = await client.head("/updates/downloads/Nexy.dmg")
    assert head.status == 200 and head.headers["Content-Length"] == str(len(ARTIFACT))


async def test_range_requests_resume_downloads(client):
    ranged = {"Range": "bytes=10-19", "Accept-Encoding": "gzip"}
    response = await client.get("/updates/downloads/Nexy.dmg", headers=ranged)
    assert response.status == 206
    assert await response.read() == ARTIFACT[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(ARTIFACT)}"
    beyond = f"bytes={len(ARTIFACT) + 10}-{len(ARTIFACT) + 20}"
    response = await client.get("/updates/downloads/Nexy.dmg", headers={"Range": beyond})
    assert response.status == 416


@pytest.mark.parametrize(
    "raw_path",
    [
        "/updates/downloads/..%2Fmanifest-stable.json",
        "/updates/downloads/%2e%2e%2fmanifest-stable.json",
        "/updates/downloads/%2e%2e",
        "/updates/downloads/%2Fetc%2Fpasswd",
        "/updates/downloads/.hidden",
        "/updates/downloads/escape.dmg",
        "/updates/downloads/absent.dmg",
        "/updates/downloads/../manifest-stable.json",
    ],
)
async def test_traversal_is_not_found(client, raw_path):
    response = await client.get(URL(raw_path, encoded=True))
    assert response.status == 404
    assert b"secret" not in await response.read()


async def test_manifest_json(client):
    response = await client.get("/updates/manifest.json")
    assert response.status == 200
    body = await response.json()
    assert (body["version"], body["build"], body["length"]) == ("1.0", "5", len(ARTIFACT))
    assert body["url"].endswith("/updates/downloads/Nexy.dmg")
    beta = await (await client.get("/updates/manifest.json?channel=beta")).json()
    assert beta["channel"] == "stable"  # beta testers are offered the newer stable release
    assert (await client.get("/updates/manifest.json?channel=nightly")).status == 400


async def test_health_json(client):
    response = await client.get("/updates/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["channels"]["stable"]["build"] == "5"
    assert body["server_version"] == "0.1.0.1"


async def test_manifest_of_an_empty_channel_is_not_found(tmp_path):
    feed = UpdateFeed(UpdatesSettings(folder=tmp_path / "empty"))
    await feed.start()
    app = web.Application()
    app.add_routes(update_routes(feed))
    async with TestClient(TestServer(app)) as empty:
        assert (await empty.get("/updates/manifest.json")).status == 404
        response = await empty.get("/updates/appcast.xml")
        assert response.status == 200
        assert ET.fromstring(await response.text()).find("channel/item") is None


async def test_feed_urls_ignore_the_request_host_header(client):
    """A forged Host (or one a cache passes on) must not send clients' downloads elsewhere."""
    evil = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example"}
    response = await client.get("/updates/appcast.xml", headers=evil)
    text = await response.text()
    assert "evil.example" not in text
    [enclosure] = ET.fromstring(text).iter("enclosure")
    url = URL(enclosure.get("url"))
    assert (url.host, url.port) == ("127.0.0.1", client.port)
    manifest = await (await client.get("/updates/manifest.json", headers=evil)).json()
    assert manifest["url"] == f"http://127.0.0.1:{client.port}/updates/downloads/Nexy.dmg"


async def test_an_empty_suffix_range_is_unsatisfiable(client):
    response = await client.get("/updates/downloads/Nexy.dmg", headers={"Range": "bytes=-0"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(ARTIFACT)}"
    tail = await client.get("/updates/downloads/Nexy.dmg", headers={"Range": "bytes=-16"})
    assert tail.status == 206 and await tail.read() == ARTIFACT[-16:]


async def test_if_range_with_another_entity_tag_sends_the_whole_file(client):
    etag = (await client.head("/updates/downloads/Nexy.dmg")).headers["ETag"]
    for stale in ('"0-0"', f"W/{etag}"):  # another version; weak tags never match
        headers = {"Range": "bytes=10-19", "If-Range": stale}
        response = await client.get("/updates/downloads/Nexy.dmg", headers=headers)
        assert response.status == 200
        assert await response.read() == ARTIFACT
    same = {"Range": "bytes=10-19", "If-Range": etag}
    response = await client.get("/updates/downloads/Nexy.dmg", headers=same)
    assert response.status == 206 and await response.read() == ARTIFACT[10:20]
