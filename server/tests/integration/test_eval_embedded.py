"""The embedded-assistant evaluation: the packaged set covers issue 12, and the scorer judges
real answers of an in-process server (scripted model, local intents) the way the rules say."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from nexy.toolkit.connection import Target
from nexy.toolkit.eval_embedded import (
    Case,
    EvalRun,
    EvalSet,
    Reply,
    is_marker_or_echo,
    load_eval_set,
    reply_language,
    run_eval,
    score,
)
from nexy.toolkit.eval_report import Summary, failure_lines, goal_checks, markdown
from nexy.turn.actions import COMMANDS
from tests.fakes.server import Factory, make_settings

# The scripted model's one answer: English, with a leaked role marker.
MODEL_REPLY = "User: the capital of France is Paris."

SUBSET = (
    Case("Open Safari", "en", "right", command="open_app", args={"app_name": "Safari"}),
    Case("Open Safari", "en", "wrong arg", command="open_app", args={"app_name": "Google Chrome"}),
    Case("close Safari", "en", "wrong command", command="open_app", args={"app_name": "Safari"}),
    Case(
        "text John: on my way",
        "en",
        "free text",
        command="send_message",
        args={"contact": "john", "message": "On my way!"},
    ),
    Case("открой сафари", "ru", "russian app", command="open_app", args={"app_name": "Safari"}),
    Case("What is the capital of France?", "en", "marker", kind="model"),
    Case("Почему небо голубое?", "ru", "english reply", kind="model"),
    Case("Remember that my favourite colour is green", "en", "memory", device="a"),
    Case("What do you remember about me?", "en", "recall", device="a", says="green"),
    Case("What do you remember about me?", "en", "other device", device="b", says="green"),
)


@pytest.fixture
async def evaluated(server_factory: Factory) -> EvalRun:
    settings = make_settings(
        **{
            "llm.intents.enabled": True,
            "llm.scripted.reply": json.dumps({"text": MODEL_REPLY}),
        }
    )
    running = await server_factory(settings)
    where = Target("127.0.0.1", running.app.grpc_port, tls=False, timeout=20.0)
    return await run_eval(where, EvalSet(SUBSET, "Tell me about the ocean.", 3))


def test_packaged_set_covers_issue_12() -> None:
    cases = load_eval_set().cases
    assert len(cases) >= 100
    for command in COMMANDS:
        phrasings = [c for c in cases if c.command == command]
        assert len(phrasings) >= 5, command
        assert {c.lang for c in phrasings} == {"en", "ru"}, command
    model = Counter(c.lang for c in cases if c.kind == "model" and c.device is None)
    assert model["en"] >= 15 and model["ru"] >= 8
    conversations = Counter(c.device for c in cases if c.device is not None)
    assert 2 <= len(conversations) <= 3 and all(4 <= n <= 6 for n in conversations.values())
    assert any(c.says for c in cases if c.device is not None)  # a conversation recalls a fact


async def test_scorer_judges_real_answers(evaluated: EvalRun) -> None:
    verdicts = {s.case.family: (s.action_ok, s.language_ok, s.marker) for s in evaluated.scores}
    assert verdicts == {
        "right": (True, True, False),
        "wrong arg": (False, True, False),  # open_app, but not the expected app
        "wrong command": (False, True, False),  # close_app where open_app was expected
        "free text": (True, True, False),  # case and punctuation of free text do not count
        "russian app": (True, True, False),  # "Открываю Safari.": the app name is not English
        "marker": (True, True, True),  # the reply carries "User:"
        "english reply": (True, False, True),  # English (and "User:") to a Russian question
        "memory": (True, True, False),
        "recall": (True, True, False),  # the same device remembers
        "other device": (False, True, False),  # another device does not: "green" is missing
    }
    model = next(s for s in evaluated.scores if s.case.family == "marker")
    assert model.reply.text.startswith("User:") and model.reply.first_audio_s is not None
    assert len(evaluated.ratio_ttfa) == 3 and all(t is not None for t in evaluated.ratio_ttfa)


async def test_missed_goals_fail_the_run(evaluated: EvalRun) -> None:
    summary = Summary.of(evaluated)
    counts = (summary.cases, summary.actions_ok, summary.language_ok, summary.markers)
    assert counts == (10, 7, 9, 2)
    assert summary.intent_ttfa[0] is not None and summary.model_ttfa[0] is not None
    failed = {c.name for c in goal_checks(summary) if not c.ok}
    assert {"eval.accuracy", "eval.language", "eval.markers"} <= failed
    section = markdown(evaluated)
    assert section.startswith("## Embedded assistant evaluation")
    assert "«close Safari»: expected open_app {'app_name': 'Safari'}, got close_app" in section


def test_a_failed_turn_fails_the_run_even_within_the_accuracy_goal() -> None:
    case = SUBSET[0]
    good = score(case, Reply("Opening Safari.", "open_app", {"app_name": "Safari"}, 0.1))
    cut = score(case, Reply("", first_audio_s=None, ended=False, status="DEADLINE_EXCEEDED"))
    run = EvalRun([good] * 20 + [cut], ratio_ttfa=[0.1, 0.1, 0.1])
    summary = Summary.of(run)
    assert summary.accuracy >= 0.95 and summary.failed_turns == 1
    failed = {c.name for c in goal_checks(summary) if not c.ok}
    assert "eval.turns" in failed and "eval.accuracy" not in failed
    ok = Summary.of(EvalRun([good] * 20, ratio_ttfa=[0.1, 0.1, 0.1]))
    assert ok.failed_turns == 0
    assert "eval.turns" not in {c.name for c in goal_checks(ok) if not c.ok}


@pytest.mark.parametrize(
    ("reply", "ignore", "language"),
    [
        ("Открываю Google Chrome.", "запусти хром Google Chrome", "ru"),
        ("Opening Google Chrome.", "запусти хром Google Chrome", "en"),
        ("Открываю github.com, https://github.com/trending", "", "ru"),
        ("Сейчас 23:19.", "", "ru"),
        ("12:30", "", None),
    ],
)
def test_reply_language_ignores_names_and_urls(
    reply: str, ignore: str, language: str | None
) -> None:
    assert reply_language(reply, ignore) == language


@pytest.mark.parametrize(
    ("reply", "prompt", "bad"),
    [
        ("Hi! How can I help?", "Hi", False),
        ("Paris. <|im_end|>", "What is the capital of France?", True),
        ("Ассистент: Париж.", "Столица Франции?", True),
        ("What is the capital of France? Paris.", "what is the capital of france", True),
        ("Tell me a joke", "Tell me a joke.", True),
        ("Opening youtube.com.", "open youtube.com", False),
    ],
)
def test_markers_and_echoes(reply: str, prompt: str, bad: bool) -> None:
    assert is_marker_or_echo(reply, prompt) is bad


def test_a_silent_reply_is_listed() -> None:
    case = Case("How far away is the Moon?", "en", "open", kind="model")
    spoken = score(case, Reply("About 384,000 km.", first_audio_s=1.5))
    silent = score(case, Reply("About 384,000 km.", first_audio_s=None))
    assert failure_lines([spoken]) == []
    assert failure_lines([silent]) == [
        "- [no audio] «How far away is the Moon?»: expected no action, got no action (OK); "
        "said «About 384,000 km.»"
    ]
