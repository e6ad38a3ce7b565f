"""Prompt assembly: the system prompt (reply format, allowed commands) and the user message."""

from __future__ import annotations

from nexy.config import ActionGroups
from nexy.providers.llm.base import Image, LLMRequest, MemoryContext, TokenMeter
from nexy.turn.actions import COMMANDS

_BASE = (
    "You are Nexy, a voice assistant for blind and low-vision computer users. Your reply is "
    "spoken aloud, so be brief, warm and concrete; no markdown, no lists, no emoji. Answer in the "
    "language the user spoke. Reply with exactly one JSON object and nothing else: "
    '{"text": "<what to say>"} or, when the user asks for something the computer should do, '
    '{"text": "<short confirmation>", "command": "<name>", "args": {...}}.'
)


def system_prompt(groups: ActionGroups, override: str = "") -> str:
    """The configured system prompt, or the built-in one listing the enabled commands."""
    if override:
        return override
    enabled = [
        f"{name}({', '.join(arg.name + ('' if arg.required else '?') for arg in spec.args)})"
        for name, spec in COMMANDS.items()
        if getattr(groups, spec.group)
    ]
    commands = "Commands you may use: " + "; ".join(enabled) + "." if enabled else ""
    return f"{_BASE} {commands}".strip()


def build_request(
    system: str,
    prompt: str,
    memory: MemoryContext | None = None,
    image: Image | None = None,
    hardware_id: str = "",
    meter: TokenMeter | None = None,
) -> LLMRequest:
    """One LLM request; memory travels as data beside the message, for each model to render."""
    user = prompt
    if image is not None:
        user = f"A screenshot of the user's screen is attached.\n\n{prompt}"
    return LLMRequest(
        system=system,
        user=user,
        prompt=prompt,
        image=image,
        hardware_id=hardware_id,
        memory=memory if memory is not None else MemoryContext(),
        meter=meter if meter is not None else TokenMeter(),
    )
