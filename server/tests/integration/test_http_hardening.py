"""The HTTP port and start-up against hostile or unlucky conditions: slow clients, a forged
Host, a database away, open breakers, addresses in reasons, a busy gRPC port."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import aiohttp
import pytest

from nexy.app import NexyApp
from nexy.providers.llm.chain import FallbackLLM
from nexy.updates.release import keygen, publish
from tests.fakes.client import commit, run_turn
from tests.fakes.server import make_settings, with_private_storage

# A PostgreSQL URL nobody listens on: the database is "down" from the start.
DOWN_DB = "postgresql+asyncpg://nexy@127.0.0.1:1/nexy"
OPERATOR = "operator-token"


async def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
        return r.status, await r.json()


async def test_slow_headers_are_cut_off_and_kept_alive_clients_are_not(server_factory):
    server = await server_factory(make_settings(**{"server.http_request_timeout_seconds": 0.5}))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.app.http_port)

    async def trickle() -> None:
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            writer.write(bytes([byte]))  # 200+ bytes at 20/s: ten seconds of headers
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    started = time.monotonic()
    try:
        async with asyncio.timeout(5):  # generous bound: the deadline is 0.5 s
            answer = await reader.read()
    except ConnectionError:
        answer = b""
    closed_after = time.monotonic() - started
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    writer.close()
    assert answer == b"" and closed_after < 5  # disconnected, no response sent

    # A kept-alive connection idle longer than the deadline between requests is still served.
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(f"{server.http}/health") as response:
                assert response.status == 200
            await asyncio.sleep(0.8)


async def test_ready_stays_200_while_the_database_is_down(server_factory):
    server = await server_factory(make_settings(**{"storage.url": DOWN_DB}))
    turn = await run_turn(server.stub, commit("hi"))
    assert turn.responses[-1].end_message == "completed"  # the outbox keeps the record
    status, ready = await get_json(f"{server.http}/ready")
    assert (status, ready["ready"]) == (200, True)
    _, body = await get_json(f"{server.http}/status")
    assert body["components"]["storage"]["state"] == "down"
    assert body["status"] == "degraded"


async def test_status_redacts_addresses_unless_an_operator_asks(server_factory):
    settings = make_settings(
        **{"storage.url": DOWN_DB, "auth.enabled": True, "auth.tokens": [OPERATOR]}
    )
    server = await server_factory(settings)
    _, public = await get_json(f"{server.http}/status")
    text = str(public)
    assert "127.0.0.1" not in text and ":1" not in public["components"]["storage"]["reason"]
    assert public["details_redacted"] is True
    assert public["components"]["storage"]["reason"]  # still says that it is down and why
    _, device = await get_json(f"{server.http}/status", {"Authorization": "Bearer wrong"})
    assert "127.0.0.1" not in str(device)
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    _, operator = await get_json(f"{server.http}/status", headers)
    assert operator["details_redacted"] is False
    assert "127.0.0.1" in operator["components"]["storage"]["reason"]


async def test_ready_ignores_open_breakers_but_not_a_chain_without_providers(server):
    chain = server.app.llm
    assert isinstance(chain, FallbackLLM)
    member = chain._chain.members[0]
    for _ in range(10):
        member.breaker.failure()
    status, _ = await get_json(f"{server.http}/ready")
    assert status == 200  # breakers close again by themselves; the fallback sentence is spoken
    _, body = await get_json(f"{server.http}/status")
    assert body["components"]["llm"]["state"] == "down"
    member.start_error = "model file missing"
    status, ready = await get_json(f"{server.http}/ready")
    assert status == 503 and ready["reasons"] == ["llm: no provider is usable"]


async def test_ready_is_503_while_shutting_down(server):
    server.app.http_context.accepting = False
    status, ready = await get_json(f"{server.http}/ready")
    assert status == 503 and ready["reasons"] == ["shutting down"]


async def test_the_feed_names_the_bound_address_not_the_host_header(server_factory, tmp_path):
    settings = make_settings(**{"updates.folder": str(tmp_path / "updates")})
    keygen(tmp_path / "k")
    (tmp_path / "Nexy.dmg").write_bytes(b"artifact")
    publish(tmp_path / "Nexy.dmg", "1.0", "5", "stable", tmp_path / "k", settings.updates)
    server = await server_factory(settings)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{server.http}/updates/appcast.xml", headers={"Host": "evil.example"}
        ) as response,
    ):
        text = await response.text()
    [enclosure] = ET.fromstring(text).iter("enclosure")
    expected = f"http://127.0.0.1:{server.app.http_port}/updates/downloads/Nexy.dmg"
    assert enclosure.get("url") == expected and "evil" not in text


async def test_a_busy_grpc_port_stops_the_start_unless_sharing_is_configured(
    server, tmp_path_factory
):
    busy = server.app.grpc_port
    second = NexyApp(with_private_storage(make_settings(), tmp_path_factory))
    with pytest.raises(OSError, match="in use") as caught:
        await second.start(grpc_port=busy, http_port=0)
    assert f":{busy}" in str(caught.value)
    assert second.registry.status()["outbox"].reason == "closed"  # nothing left open
    shared = make_settings(**{"server.reuse_port": True})
    sharing = NexyApp(with_private_storage(shared, tmp_path_factory))
    first = NexyApp(with_private_storage(shared, tmp_path_factory))
    await first.start(grpc_port=0, http_port=0)
    try:
        await sharing.start(grpc_port=first.grpc_port, http_port=0)
        assert sharing.grpc_port == first.grpc_port
        await sharing.stop()
    finally:
        await first.stop()
