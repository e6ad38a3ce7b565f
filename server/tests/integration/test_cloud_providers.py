"""Cloud LLMs through the real server against local fakes of their vendors' protocols."""

from __future__ import annotations

import asyncio
import socket
import time

import grpc
import pytest

from tests.e2e.test_embedded_defaults import PIXEL_PNG
from tests.fakes import gemini_server, openai_server
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens here once the socket closes


async def test_openai_compatible_endpoint_answers_with_text_and_speech(server_factory):
    fake = openai_server.FakeOpenAI(chunks=['{"text": "Hi there', ', from OpenAI."}'])
    async with openai_server.running(fake):
        settings = make_settings(
            **{
                "llm.provider": "openai",
                "llm.openai.base_url": fake.base_url,
                "llm.openai.api_key": openai_server.GOOD_KEY,
                "llm.openai.model": "test-model",
            }
        )
        server = await server_factory(settings)
        result = await run_turn(server.stub, commit("look", screenshot=PIXEL_PNG))
    assert result.text == "Hi there, from OpenAI."
    assert result.is_spoken_turn()
    body = fake.requests[-1].body
    assert body["model"] == "test-model" and body["stream"] is True
    parts = body["messages"][-1]["content"]
    image = [p for p in parts if p["type"] == "image_url"][0]["image_url"]["url"]
    assert image == "data:image/png;base64," + PIXEL_PNG


async def test_gemini_endpoint_answers_with_text_and_speech(server_factory):
    fake = gemini_server.FakeGemini(chunks=['{"text": "Hello', ' from Gemini."}'])
    async with gemini_server.running(fake):
        settings = make_settings(
            **{
                "llm.provider": "gemini",
                "llm.gemini.base_url": fake.base_url,
                "llm.gemini.api_key": gemini_server.GOOD_KEY,
            }
        )
        server = await server_factory(settings)
        result = await run_turn(server.stub, commit("look", screenshot=PIXEL_PNG))
    assert result.text == "Hello from Gemini."
    assert result.is_spoken_turn()
    contents = fake.requests[-1].body["contents"]
    inline = [p for p in contents[-1]["parts"] if "inlineData" in p or "inline_data" in p]
    assert inline, "the screenshot must reach Gemini as an inline image part"
    data = inline[0].get("inlineData") or inline[0].get("inline_data")
    assert (data.get("mimeType") or data.get("mime_type")) == "image/png"


async def test_unreachable_first_provider_hands_over_within_the_connect_timeout(server_factory):
    settings = make_settings(
        **{
            "llm.provider": "openai",
            "llm.openai.base_url": f"http://127.0.0.1:{_closed_port()}/v1",
            "llm.fallbacks": ["scripted"],
            "llm.scripted.reply": '{"text": "The fallback answered."}',
        }
    )
    server = await server_factory(settings)
    baseline = await server_factory(
        make_settings(**{"llm.scripted.reply": '{"text": "The fallback answered."}'})
    )
    started = time.perf_counter()
    direct = await run_turn(baseline.stub, commit("hi"))
    direct_s = time.perf_counter() - started
    started = time.perf_counter()
    result = await run_turn(server.stub, commit("hi"))
    chained_s = time.perf_counter() - started
    assert direct.text == result.text == "The fallback answered."
    assert result.is_spoken_turn()
    assert chained_s - direct_s < settings.llm.timeouts.connect_seconds
    await server.app.settle()  # the memory analysis after the turn goes through the chain too
    status = server.app.provider_stats()["llm"]
    assert [s.name for s in status] == ["openai", "scripted"]
    assert status[0].failures == 2 and status[1].calls == 2


async def test_every_provider_down_is_never_silent(server_factory):
    settings = make_settings(
        **{
            "llm.provider": "openai",
            "llm.openai.base_url": f"http://127.0.0.1:{_closed_port()}/v1",
        }
    )
    server = await server_factory(settings)
    result = await run_turn(server.stub, commit("hi"))
    assert result.code == grpc.StatusCode.OK
    assert result.text == settings.turn.fallback_text and result.is_spoken_turn()
    await server.app.settle()  # the memory analysis after the turn tries the model too
    metrics = server.app.metrics.render().decode()
    assert 'nexy_provider_failures_total{kind="llm",provider="openai"} 2.0' in metrics


async def test_a_cloud_model_also_extracts_memory_facts(server_factory):
    reply = '{"text": "Noted.", "facts": ["The user owns a red bicycle."]}'
    fake = openai_server.FakeOpenAI(chunks=[reply])
    async with openai_server.running(fake):
        settings = make_settings(
            **{
                "llm.provider": "openai",
                "llm.openai.base_url": fake.base_url,
                "llm.openai.api_key": openai_server.GOOD_KEY,
            }
        )
        server = await server_factory(settings)
        result = await run_turn(server.stub, commit("I finally bought that bike"))
        assert result.text == "Noted."
        facts: list[str] = []
        for _ in range(100):  # the analysis runs after the turn, off its hot path
            await server.app.settle()
            exported = await server.app.repository.export_device(HARDWARE_ID)
            facts = exported["memory"]["facts"]
            if facts:
                break
            await asyncio.sleep(0.05)
    assert facts == ["The user owns a red bicycle."]
    # The analysis was a second request to the model, after the turn's own, and both were
    # counted: the turn's reply and the memory reading each have their own usage row.
    assert len(fake.requests) == 2
    usage = await server.stored_usage(HARDWARE_ID)
    assert sorted((source, inp, out) for source, _, inp, out in usage) == [
        ("server", *fake.usage),
        ("server-memory", *fake.usage),
    ]


@pytest.mark.parametrize("vendor", ["openai", "gemini"])
async def test_the_models_token_counts_are_stored_for_the_turn(server_factory, vendor):
    module = openai_server if vendor == "openai" else gemini_server
    fake = (
        openai_server.FakeOpenAI(usage=(40, 6))
        if vendor == "openai"
        else gemini_server.FakeGemini(usage=(40, 6))
    )
    async with module.running(fake):
        settings = make_settings(
            **{
                "llm.provider": vendor,
                f"llm.{vendor}.base_url": fake.base_url,
                f"llm.{vendor}.api_key": module.GOOD_KEY,
                f"llm.{vendor}.model": "counted-model",
            }
        )
        server = await server_factory(settings)
        result = await run_turn(server.stub, commit("hello"))
        assert result.is_spoken_turn()
        usage = await server.stored_usage(HARDWARE_ID)
    # The memory analysis that follows the turn has rows of its own ("server-memory").
    assert [row for row in usage if row[0] == "server"] == [("server", "counted-model", 40, 6)]
