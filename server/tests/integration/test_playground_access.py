"""Who may use the playground: on/off, the gRPC tokens and device bindings, its own page only;
and its memory view."""

from __future__ import annotations

import aiohttp
import pytest

from nexy.config_loading import load_settings
from nexy.transport.http.playground import playground_enabled
from tests.fakes.client import HARDWARE_ID
from tests.fakes.playground import request, socket_turn
from tests.fakes.server import make_settings

OTHER_DEVICE = "11111111-2222-4333-8444-555555555555"
DEVICE_TOKEN = "device-token"
OPERATOR_TOKEN = "operator-token"


@pytest.fixture
async def guarded(server_factory):
    clients = [{"token": DEVICE_TOKEN, "hardware_ids": [HARDWARE_ID]}]
    settings = make_settings(
        **{"auth.enabled": True, "auth.tokens": [OPERATOR_TOKEN], "auth.clients": clients}
    )
    return await server_factory(settings)


async def _get(url: str, **kwargs) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as response:
        return response.status, await response.text()


async def _post(url: str, body: object, **kwargs) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, **kwargs) as response:
        return response.status, await response.json()


def test_auto_means_loopback_hosts_only():
    assert playground_enabled("auto", "127.0.0.1") and playground_enabled("auto", "::1")
    assert playground_enabled("auto", "localhost")
    assert not playground_enabled("auto", "0.0.0.0")
    assert playground_enabled("on", "0.0.0.0") and not playground_enabled("off", "127.0.0.1")


def test_the_switch_reads_yaml_booleans_and_words():
    assert load_settings(env={}).server.playground == "auto"
    assert load_settings(env={}, overrides={"server.playground": False}).server.playground == "off"
    env = {"NEXY_SERVER__PLAYGROUND": "on"}
    assert load_settings(env=env).server.playground == "on"


async def test_the_page_and_its_files_are_served(server):
    status, page = await _get(server.http + "/playground")
    assert status == 200 and "<title>Nexy playground</title>" in page
    for name in ("app.js", "player.js", "status.js", "style.css"):
        status, _ = await _get(f"{server.http}/playground/static/{name}")
        assert status == 200, name
    status, _ = await _get(server.http + "/playground/static/../routes.py")
    assert status in (403, 404)
    _, body = await _get(server.http + "/status")
    assert "/playground" in body


async def test_off_means_404_everywhere(server_factory):
    server = await server_factory(make_settings(**{"server.playground": "off"}))
    for path in ("/playground", "/playground/ws", "/playground/api/memory?hardware_id=x"):
        status, _ = await _get(server.http + path)
        assert status == 404, path
    _, body = await _get(server.http + "/status")
    assert "/playground" not in body


async def test_turns_need_a_token_when_auth_is_on(guarded):
    refused = await socket_turn(guarded.http, request())
    assert refused.messages == [
        {
            "type": "error_message",
            "code": "UNAUTHENTICATED",
            "message": "missing or invalid bearer token",
        }
    ]
    wrong = await socket_turn(guarded.http, request(token="nope"))
    assert wrong.terminal["code"] == "UNAUTHENTICATED"
    served = await socket_turn(guarded.http, request(token=DEVICE_TOKEN))
    assert served.terminal["type"] == "end_message"
    header = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    by_header = await socket_turn(guarded.http, request(hardware_id=OTHER_DEVICE), headers=header)
    assert by_header.terminal["type"] == "end_message"


async def test_a_bound_token_acts_only_for_its_device(guarded):
    turn = await socket_turn(guarded.http, request(hardware_id=OTHER_DEVICE, token=DEVICE_TOKEN))
    assert turn.terminal == {
        "type": "error_message",
        "code": "PERMISSION_DENIED",
        "message": "This token may not act for that device.",
    }
    url = f"{guarded.http}/playground/api/memory?hardware_id={OTHER_DEVICE}"
    status, _ = await _get(url, headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    assert status == 403
    status, _ = await _get(url)
    assert status == 401


async def test_another_sites_page_is_refused(server):
    foreign = {"Origin": "http://evil.example"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # no socket at all
        await socket_turn(server.http, request(), headers=foreign)
    assert refused.value.status == 403
    status, _ = await _post(
        server.http + "/playground/api/forget", {"hardware_id": HARDWARE_ID}, headers=foreign
    )
    assert status == 403
    # DNS rebinding: a foreign name resolving to 127.0.0.1 carries a matching Origin.
    rebound = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
    status, _ = await _get(f"{server.http}/playground/api/memory?hardware_id=x", headers=rebound)
    assert status == 403
    own = {"Origin": server.http}
    assert (await socket_turn(server.http, request(), headers=own)).terminal["type"] == (
        "end_message"
    )


async def test_memory_view_and_forget(server):
    await server.app.memory.remember(HARDWARE_ID, "my name is Alex")
    await socket_turn(server.http, request("Hello"))
    await server.app.settle()
    url = f"{server.http}/playground/api/memory?hardware_id={HARDWARE_ID.lower()}"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        memory = await response.json()
    assert memory["hardware_id"] == HARDWARE_ID  # the canonical spelling, as gRPC stores it
    assert memory["facts"] == ["my name is Alex"]
    assert [(e["user"], e["assistant"]) for e in memory["recent"]] == [
        ("Hello", "Hello! This is the scripted test reply.")
    ]
    status, body = await _post(server.http + "/playground/api/forget", {"hardware_id": HARDWARE_ID})
    assert (status, body["facts_removed"]) == (200, 1)
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert await response.json() == {"hardware_id": HARDWARE_ID, "facts": [], "recent": []}


async def test_memory_api_validates_the_device_id(server):
    status, body = await _get(server.http + "/playground/api/memory?hardware_id=")
    assert status == 400 and "hardware_id is required" in body
    status, reply = await _post(server.http + "/playground/api/forget", ["not", "an", "object"])
    assert status == 400 and reply["code"] == "INVALID_ARGUMENT"
