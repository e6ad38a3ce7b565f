"""The intent path in front of the LLM, and speech-text cleaning, through a real server."""

from __future__ import annotations

import json

import pytest

from tests.fakes.client import commit, run_turn
from tests.fakes.providers import FailingLLM
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio


async def test_open_app_intent_answers_without_calling_the_llm(server_factory):
    llm = FailingLLM()
    server = await server_factory(make_settings(**{"llm.intents.enabled": True}))
    # Replace the model behind the intent path with one that would fail if it were asked.
    server.app.llm.inner = llm
    result = await run_turn(server.stub, commit("Open Safari please"))
    assert llm.calls == 0
    assert result.text == "Opening Safari."
    assert result.kinds[-2:] == ["action_message", "end_message"]
    action = json.loads(result.responses[-2].action_message.action_json)
    assert (action["command"], action["args"]) == ("open_app", {"app_name": "Safari"})


async def test_remember_then_recall_across_sessions(server_factory):
    server = await server_factory(make_settings(**{"llm.intents.enabled": True}))
    said = await run_turn(server.stub, commit("Remember that my name is Alex"))
    assert said.kinds[-1] == "end_message"
    recalled = await run_turn(server.stub, commit("What do you remember?"))
    assert "Alex" in recalled.text


async def test_unmatched_prompt_goes_to_the_model(server_factory):
    settings = make_settings(**{"llm.intents.enabled": True, "llm.scripted.mode": "echo"})
    server = await server_factory(settings)
    result = await run_turn(server.stub, commit("Why is the sky blue?"))
    assert result.text == "Why is the sky blue?"


async def test_markdown_and_emoji_are_cleaned_before_speaking(server_factory):
    reply = '{"text": "**Great** news 🎉! Here are the steps:\\n- First step.\\n- Second step."}'
    server = await server_factory(make_settings(**{"llm.scripted.reply": reply}))
    result = await run_turn(server.stub, commit("steps"))
    assert "*" not in result.text and "🎉" not in result.text and "- " not in result.text
    assert "Great news" in result.text and "First step." in result.text
    assert result.is_spoken_turn()
