"""The configured time zone (``llm.intents.timezone``) reaches the time answers the server builds."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from nexy.config import ScriptedLLMSettings
from nexy.config_loading import load_settings
from nexy.memory.hooks import InProcessMemory
from nexy.providers.factory import with_intents
from nexy.providers.llm.base import LLMRequest
from nexy.providers.llm.scripted import ScriptedLLM


def clock_text(zone: str) -> str:
    """The time in ``zone`` as the intents say it: "2:30"."""
    now = datetime.now(ZoneInfo(zone))
    return f"{now.hour % 12 or 12}:{now.minute:02d}"


async def spoken_time(env: dict[str, str]) -> str:
    settings = load_settings(env=env)
    model = with_intents(ScriptedLLM(ScriptedLLMSettings()), settings, InProcessMemory())
    ask = LLMRequest(system="", user="what time is it", prompt="what time is it")
    return "".join([fragment async for fragment in model.stream(ask)])


async def test_time_answers_follow_the_configured_zone() -> None:
    answers = {}
    for zone in ("Europe/Moscow", "UTC"):
        before = clock_text(zone)
        answer = await spoken_time({"NEXY_LLM__INTENTS__TIMEZONE": zone})
        # A minute may turn over while asking; either reading is the zone's own time.
        assert before in answer or clock_text(zone) in answer, (zone, answer)
        answers[zone] = answer
    # Moscow is three hours ahead of UTC all year: the two answers never agree.
    assert answers["Europe/Moscow"] != answers["UTC"]
