"""The action allow-list: normalisation, schemas, feature flags, kill switch, payload."""

from __future__ import annotations

import json

import pytest

from nexy.config import ActionGroups, ActionSettings
from nexy.events import Action
from nexy.turn.actions import ActionPolicy, action_json, normalize_command


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("open_app", "open_app"),
        ("Open-App", "open_app"),
        ("open.app", "open_app"),
        ("  OPEN APP ", "open_app"),
        ("close--app", "close_app"),
    ],
)
def test_normalize(raw, expected):
    assert normalize_command(raw) == expected


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("open_app", {"app_name": "Safari"}, Action("open_app", {"app_name": "Safari"})),
        (
            "Open-App",
            {"app_name": " Safari ", "extra": 1},
            Action("open_app", {"app_name": "Safari"}),
        ),
        ("open_app", {}, None),
        ("open_app", {"app_name": ""}, None),
        ("open_app", {"app_name": 5}, None),
        ("read_messages", {}, Action("read_messages", {})),
        ("read_messages", {"limit": "3"}, Action("read_messages", {"limit": 3})),
        ("read_messages", {"limit": True}, None),
        (
            "send_message",
            {"contact": "Mom", "message": "Привет"},
            Action("send_message", {"contact": "Mom", "message": "Привет"}),
        ),
        ("send_message", {"contact": "Mom"}, None),
        ("browser_use", {"task": "find news"}, Action("browser_use", {"task": "find news"})),
        ("close_browser", {}, Action("close_browser", {})),
        ("buy_subscription", {}, Action("buy_subscription", {})),
        ("format_disk", {}, None),
        (None, {}, None),
        ("", {}, None),
    ],
)
def test_validate(command, args, expected):
    policy = ActionPolicy(ActionSettings())
    assert policy.validate(command, args) == expected


def test_dropped_commands_are_counted():
    policy = ActionPolicy(ActionSettings())
    policy.validate("format_disk", {})
    policy.validate("open_app", {})
    assert policy.dropped == 2


def test_feature_groups_and_forwarding_flag():
    off = ActionPolicy(ActionSettings(groups=ActionGroups(apps=False)))
    assert off.validate("open_app", {"app_name": "Mail"}) is None
    assert off.validate("close_browser", {}) is not None
    assert ActionPolicy(ActionSettings(forward=False)).validate("close_browser", {}) is None


def test_kill_switch_file_takes_effect_without_restart(tmp_path):
    switch = tmp_path / "actions.off"
    policy = ActionPolicy(ActionSettings(kill_switch_file=switch))
    assert policy.validate("close_browser", {}) is not None
    switch.touch()
    assert policy.validate("close_browser", {}) is None
    switch.unlink()
    assert policy.validate("close_browser", {}) is not None


def test_action_json_uses_request_session_and_keeps_non_ascii():
    payload = action_json(Action("send_message", {"contact": "Мама", "message": "Привет"}), "sid-1")
    assert "Мама" in payload
    assert json.loads(payload) == {
        "session_id": "sid-1",
        "command": "send_message",
        "args": {"contact": "Мама", "message": "Привет"},
    }
