"""``test_mcp_full_integration.py``: model commands → the allow-list → ``action_message``.

Offline, the pure parts run in-process: the reply extractor finds the command in every reply
shape the model produces, the allow-list normalises and validates it, the feature flags and the
forwarding switch drop it, and the payload is ``{"session_id", "command", "args"}``. Online,
"Open Safari"/"Close Safari" (answered by the server's local intent path) must arrive as that
payload, or, against a server run with ``actions.forward=false``, must not arrive at all.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from nexy.config import ActionGroups, ActionSettings
from nexy.events import Action
from nexy.toolkit.calls import QUICK_PROMPT, TurnResult, commit, run_turn, stub_for
from nexy.toolkit.connection import Target, new_session
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, verdict
from nexy.turn.actions import ActionPolicy, action_json, normalize_command
from nexy.turn.extract import ReplyExtractor

PAYLOAD_KEYS = {"session_id", "command", "args"}
_OPEN = '{"text": "Opening Safari.", "command": "Open-App", "args": {"app_name": "Safari"}}'
# Reply shapes the model really produces; each must yield the same command and spoken text.
# The key goes into the check name, which never depends on the language.
REPLY_SHAPES = {
    "plain_json": _OPEN,
    "json_block": f"```json\n{_OPEN}\n```",
    "text_around": f"Sure! {_OPEN} Done.",
}


def _shape_label(key: str) -> str:
    return {
        "plain_json": say("plain JSON", "чистый JSON"),
        "json_block": say("```json block", "блок ```json"),
        "text_around": say("text around JSON", "текст вокруг JSON"),
    }[key]


def _parse(reply: str, fragment: int = 5) -> tuple[str, str | None, dict[str, object]]:
    """Feed a reply in small fragments, as a streaming model would; spoken text and command."""
    extractor = ReplyExtractor()
    spoken = "".join(
        extractor.feed(reply[i : i + fragment]) for i in range(0, len(reply), fragment)
    )
    tail = extractor.finish()
    return spoken + tail.text, tail.command, tail.args


def _parsing_checks() -> list[Check]:
    checks = []
    for key, reply in REPLY_SHAPES.items():
        label = _shape_label(key)
        spoken, command, args = _parse(reply)
        ok = command == "Open-App" and args == {"app_name": "Safari"}
        ok = ok and "Opening Safari." in spoken and "json" not in spoken and "{" not in spoken
        checks.append(
            verdict(
                f"mcp.parse.{key}",
                ok,
                say(
                    f"MCP command parsing ({label}): {command} {args}, speech '{spoken.strip()}'",
                    f"Парсинг MCP команды ({label}): {command} {args}, речь «{spoken.strip()}»",
                ),
                say(
                    f"Parsing ({label}): command {command!r} {args}, speech '{spoken.strip()}'",
                    f"Парсинг ({label}): команда {command!r} {args}, речь «{spoken.strip()}»",
                ),
            )
        )
    spoken, command, _ = _parse("Just a plain answer, no command.")
    checks.append(
        verdict(
            "mcp.parse.plain",
            command is None and spoken.strip() == "Just a plain answer, no command.",
            say(
                "Plain text without JSON: no command, spoken as is",
                "Обычный текст без JSON: команды нет, произносится как есть",
            ),
            say(
                f"Plain text: command {command!r}, speech '{spoken}'",
                f"Обычный текст: команда {command!r}, речь «{spoken}»",
            ),
        )
    )
    return checks


def _policy_checks(kill_switch: Path) -> list[Check]:
    policy = ActionPolicy(ActionSettings())
    names = {raw: normalize_command(raw) for raw in ("Open-App", "open.app", " OPEN APP ")}
    cases: list[tuple[str, bool, str]] = [
        (
            "mcp.normalise",
            set(names.values()) == {"open_app"},
            say(f"Name normalisation: {names}", f"Нормализация имён: {names}"),
        ),
        (
            "mcp.allow_list",
            policy.validate("open_app", {"app_name": "Safari", "extra": 1})
            == Action("open_app", {"app_name": "Safari"})
            and policy.validate("delete_everything", {}) is None
            and policy.validate("open_app", {}) is None
            and policy.validate("read_messages", {"limit": "5"})
            == Action("read_messages", {"limit": 5}),
            say(
                "Allow-list: unknown command and bad args dropped, extra keys removed",
                "Allow-list: неизвестная команда и неверные args отброшены, лишние ключи убраны",
            ),
        ),
    ]
    off = ActionPolicy(ActionSettings(forward=False))
    no_apps = ActionPolicy(ActionSettings(groups=ActionGroups(apps=False)))
    killed = ActionPolicy(ActionSettings(kill_switch_file=kill_switch))
    kill_switch.touch()
    flags_ok = all(
        p.validate("open_app", {"app_name": "Safari"}) is None for p in (off, no_apps, killed)
    )
    kill_switch.unlink()
    cases.append(
        (
            "mcp.feature_flags",
            flags_ok and killed.validate("open_app", {"app_name": "Safari"}) is not None,
            say(
                "Feature flags: forward=false, group apps=false and the kill switch turn it off",
                "Feature flags: forward=false, группа apps=false и kill switch отключают действие",
            ),
        )
    )
    payload = json.loads(action_json(Action("open_app", {"app_name": "Сафари"}), "s-1"))
    raw = action_json(Action("open_app", {"app_name": "Сафари"}), "s-1")
    cases.append(
        (
            "mcp.payload",
            set(payload) == PAYLOAD_KEYS and payload["session_id"] == "s-1" and "Сафари" in raw,
            f"command_payload: {raw}",
        )
    )
    failed_mark = say("NOT met", "НЕ выполнено")
    return [verdict(name, ok, text, f"{text} — {failed_mark}") for name, ok, text in cases]


def run_actions_offline(report: Report) -> Report:
    """The in-process checks (no server needed)."""
    report.step(
        say(
            "Testing command parsing and the allow-list (no server)",
            "Тестирование парсинга и allow-list команд (без сервера)",
        )
    )
    report.add(*_parsing_checks())
    with tempfile.TemporaryDirectory(prefix="nexy-mcp-") as folder:
        report.add(*_policy_checks(Path(folder) / "kill-switch"))
    return report


def _payload_check(name: str, result: TurnResult, session: str, command: str) -> Check:
    if not result.ended or len(result.actions) != 1:
        detail = say(
            f"{name}: expected one action {command}, stream {result.shape()}",
            f"{name}: ожидалось одно действие {command}, поток {result.shape()}",
        )
        return failed(name, f"{detail} ({result.status()})")
    message = result.actions[0]
    try:
        data: Any = json.loads(message.action_json)
    except ValueError:
        raw = message.action_json
        return failed(
            name,
            say(
                f"{name}: action_json is not JSON: {raw!r}", f"{name}: action_json не JSON: {raw!r}"
            ),
        )
    ok = isinstance(data, dict) and set(data) == PAYLOAD_KEYS
    ok = ok and data["command"] == command and data["session_id"] == session
    ok = ok and message.session_id == session and isinstance(data.get("args"), dict)
    ok = ok and result.kinds[-2:] == ["action_message", "end_message"]
    return verdict(
        name,
        ok,
        say(
            f"Sent over gRPC: action_message {message.action_json}",
            f"Передача через gRPC: action_message {message.action_json}",
        ),
        say(
            f"action_message off contract: {message.action_json} (message session_id "
            f"{message.session_id!r}, request {session!r}); stream {result.shape()}",
            f"action_message не по контракту: {message.action_json} (session_id сообщения "
            f"{message.session_id!r}, запроса {session!r}); поток {result.shape()}",
        ),
    )


async def run_actions(grpc_target: Target, report: Report, *, expect_no_actions: bool) -> Report:
    """Online checks: the payload (default), or no action at all (``expect_no_actions``)."""
    channel = grpc_target.channel()
    stub = stub_for(channel)
    try:
        for prompt, command in (("Open Safari", "open_app"), ("Close Safari", "close_app")):
            report.step(say(f"Testing the command '{prompt}'", f"Тестирование команды «{prompt}»"))
            session = new_session()
            result = await run_turn(stub, commit(prompt, session_id=session), grpc_target.timeout)
            name = f"mcp.grpc.{command}"
            if expect_no_actions:
                report.add(
                    verdict(
                        name,
                        result.ended and not result.actions and bool(result.text),
                        say(
                            f"Feature flag off: '{prompt}' → speech only '{result.text}', "
                            "no action_message",
                            f"Feature flag выключен: «{prompt}» → только речь «{result.text}», "
                            "без action_message",
                        ),
                        say(
                            f"Feature flag off, yet: stream {result.shape()} ({result.status()})",
                            f"Feature flag выключен, но: поток {result.shape()} "
                            f"({result.status()})",
                        ),
                    )
                )
            else:
                report.add(_payload_check(name, result, session, command))
        result = await run_turn(stub, commit(QUICK_PROMPT), grpc_target.timeout)
        report.add(
            verdict(
                "mcp.grpc.no_command",
                result.ended and not result.actions,
                say(
                    f"A request without a command ('{QUICK_PROMPT}') → no action_message",
                    f"Запрос без команды («{QUICK_PROMPT}») → без action_message",
                ),
                say(
                    f"A request without a command: stream {result.shape()} ({result.status()})",
                    f"Запрос без команды: поток {result.shape()} ({result.status()})",
                ),
            )
        )
    finally:
        await channel.close()
    return report
