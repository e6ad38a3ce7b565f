"""The action allow-list: which commands the client may be asked to run, and their arguments.

The model names a command freely; only allow-listed commands whose arguments validate against
their schema, in an enabled feature group, with forwarding on, reach the client.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nexy.config import ActionSettings
from nexy.events import Action

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    kind: type[str] | type[int]
    required: bool = True


@dataclass(frozen=True, slots=True)
class CommandSpec:
    group: str  # the feature flag in actions.groups that enables it
    args: tuple[Arg, ...] = ()


COMMANDS: dict[str, CommandSpec] = {
    "open_app": CommandSpec("apps", (Arg("app_name", str),)),
    "close_app": CommandSpec("apps", (Arg("app_name", str),)),
    "read_messages": CommandSpec(
        "messages", (Arg("contact", str, required=False), Arg("limit", int, required=False))
    ),
    "send_message": CommandSpec("messages", (Arg("contact", str), Arg("message", str))),
    "find_contact": CommandSpec("messages", (Arg("query", str),)),
    "browser_use": CommandSpec("browser", (Arg("task", str), Arg("url", str, required=False))),
    "close_browser": CommandSpec("browser"),
    "manage_subscription": CommandSpec("subscription"),
    "buy_subscription": CommandSpec("subscription"),
}

_SEPARATORS = re.compile(r"[\s.\-]+")


def normalize_command(name: str) -> str:
    """``Open-App``, ``open.app`` and ``open app`` all become ``open_app``."""
    return _SEPARATORS.sub("_", name.strip().lower())


class ActionPolicy:
    """Validates a model's command against the allow-list and the feature flags."""

    def __init__(self, settings: ActionSettings) -> None:
        self._settings = settings
        self.dropped = 0  # commands refused since start (exported as a metric)

    def forwarding_enabled(self) -> bool:
        switch = self._settings.kill_switch_file
        return self._settings.forward and not (switch is not None and switch.exists())

    def validate(self, command: str | None, args: Mapping[str, object]) -> Action | None:
        """The action to send, or None when the command must be dropped (logged and counted)."""
        if not command:
            return None
        name = normalize_command(command)
        spec = COMMANDS.get(name)
        reason = self._refusal(name, spec)
        clean = _validate_args(spec, args) if spec is not None and reason is None else None
        if reason is None and clean is None:
            reason = "arguments do not match the schema"
        if reason is not None or clean is None:
            self.dropped += 1
            log.info("action dropped: command=%s reason=%s", name[:64], reason)
            return None
        return Action(command=name, args=clean)

    def _refusal(self, name: str, spec: CommandSpec | None) -> str | None:
        if spec is None:
            return "not in the allow-list"
        if not getattr(self._settings.groups, spec.group):
            return f"feature group {spec.group} is off"
        if not self.forwarding_enabled():
            return "action forwarding is off"
        return None


def _validate_args(spec: CommandSpec, args: Mapping[str, object]) -> dict[str, str | int] | None:
    clean: dict[str, str | int] = {}
    for arg in spec.args:
        value = args.get(arg.name)
        if value is None or value == "":
            if arg.required:
                return None
            continue
        coerced = _coerce(value, arg.kind)
        if coerced is None:
            return None
        clean[arg.name] = coerced
    return clean  # keys outside the schema are dropped: the client gets only what it knows


def _coerce(value: object, kind: type[str] | type[int]) -> str | int | None:
    if kind is str:
        return value.strip() or None if isinstance(value, str) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def action_json(action: Action, session_id: str) -> str:
    """The wire payload: session id from the request (never the model's), non-ASCII kept."""
    payload = {"session_id": session_id, "command": action.command, "args": dict(action.args)}
    return json.dumps(payload, ensure_ascii=False)
