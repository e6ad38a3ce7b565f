"""Token → device binding (auth.clients) and the start-up warning for an open server."""

from __future__ import annotations

import logging

import grpc
import pytest

from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.server import make_settings

OTHER_DEVICE = "0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0"
DEVICE_TOKEN = "device-token-for-one-device"
ANY_DEVICE_TOKEN = "client-token-for-any-device"
OPERATOR_TOKEN = "operator-token"
DENIED_TEXT = "This token may not act for that device."


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def bound(server_factory):
    clients = [
        # Bound by an alias of the id: the binding compares canonical ids.
        {"token": DEVICE_TOKEN, "hardware_ids": ["{" + HARDWARE_ID.lower() + "}"]},
        {"token": ANY_DEVICE_TOKEN, "hardware_ids": []},
    ]
    settings = make_settings(
        **{"auth.enabled": True, "auth.tokens": [OPERATOR_TOKEN], "auth.clients": clients}
    )
    return await server_factory(settings)


async def test_a_bound_token_acts_for_its_own_device(bound):
    good = bound.stub.StreamAudio(commit("hi"), metadata=bearer(DEVICE_TOKEN))
    assert [r async for r in good][-1].end_message == "completed"
    interrupt = await bound.stub.InterruptSession(
        pb.InterruptRequest(hardware_id=HARDWARE_ID), metadata=bearer(DEVICE_TOKEN)
    )
    assert interrupt.success
    welcome = bound.stub.GenerateWelcomeAudio(pb.WelcomeRequest(), metadata=bearer(DEVICE_TOKEN))
    assert [r async for r in welcome][-1].WhichOneof("content") == "end_message"


async def test_a_bound_token_is_refused_for_another_device(bound):
    stream = bound.stub.StreamAudio(
        commit("what do you remember about me", hardware_id=OTHER_DEVICE),
        metadata=bearer(DEVICE_TOKEN),
    )
    with pytest.raises(grpc.aio.AioRpcError):
        assert [r async for r in stream] == []
    assert await stream.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await stream.details() == DENIED_TEXT
    for call, request in (
        (bound.stub.InterruptSession, pb.InterruptRequest(hardware_id=OTHER_DEVICE)),
        (bound.stub.ReportUsage, pb.UsageRequest(hardware_id=OTHER_DEVICE)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(request, metadata=bearer(DEVICE_TOKEN))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert refused.value.details() == DENIED_TEXT


async def test_unbound_tokens_act_for_any_device(bound):
    for token in (ANY_DEVICE_TOKEN, OPERATOR_TOKEN):
        result = await bound.stub.InterruptSession(
            pb.InterruptRequest(hardware_id=OTHER_DEVICE), metadata=bearer(token)
        )
        assert result.success
    missing = await run_turn(bound.stub, commit("hi", hardware_id=OTHER_DEVICE))
    assert missing.code == grpc.StatusCode.UNAUTHENTICATED


WARNING = "without authentication"


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({"server.host": "0.0.0.0"}, True),
        ({"server.host": "127.0.0.1"}, False),
        ({"server.host": "0.0.0.0", "auth.enabled": True, "auth.tokens": ["t"]}, False),
    ],
)
async def test_an_open_server_on_the_network_warns_at_start(
    server_factory, caplog, overrides, warned
):
    caplog.set_level(logging.WARNING)
    await server_factory(make_settings(**overrides))
    warnings = [r for r in caplog.records if WARNING in r.getMessage()]
    assert bool(warnings) is warned
    if warned:
        assert "memory" in warnings[0].getMessage() and warnings[0].levelname == "WARNING"
