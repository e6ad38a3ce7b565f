"""The reply checks that keep a small model's transcript-format, echoes and wrong script unsaid."""

from __future__ import annotations

import pytest

from nexy.providers.llm.base import Exchange, LLMRequest, MemoryContext, plain_text
from nexy.providers.llm.reply_check import ReplyGuard, degenerate, is_echo, wrong_script

ITALY = "what is the capital of Italy"


def guarded(prompt: str, pieces: list[str]) -> tuple[str, list[str]]:
    """The final reply and what was speakable after each piece (it must only ever grow)."""
    guard = ReplyGuard(prompt)
    seen = []
    for piece in pieces:
        seen.append(guard.push(piece))
        if guard.ended:
            break
    final = guard.finish()
    for earlier, later in zip(seen, [*seen[1:], final], strict=True):
        assert later.startswith(earlier), (earlier, later)
    return final, seen


@pytest.mark.parametrize(
    ("prompt", "pieces", "expected"),
    [
        (ITALY, ["The capital", " of Italy", " is Rome."], "The capital of Italy is Rome."),
        (ITALY, ["User:", " What is the capital of Italy?"], ""),
        (ITALY, ["Rome.", "\nAss", "istant: Rome"], "Rome."),
        (ITALY, ["Rome. <|im_", "end|>"], "Rome."),
        (ITALY, ["Рим.", " Пользователь: да"], ""),  # wrong script first, markers anyway
        (ITALY, ["What is the capital", " of Italy?", " It is Rome."], "It is Rome."),
        (ITALY, ["What is the capital", " of Italy?"], ""),  # a pure echo
        (ITALY, ["What is the"], ""),  # an echo cut short
        ("Hello, who are you?", ["Без интер", "национы, есть?"], ""),
        ("Hello, who are you?", ["Hello, I'm", " Nexy!"], "Hello, I'm Nexy!"),
        ("Hello", ["Hello!", " How can I help?"], "Hello! How can I help?"),
        ("Расскажи анекдот", ["Без интернета я умею немного."], "Без интернета я умею немного."),
        ("How are you?", ["Fine, thanks", "."], "Fine, thanks."),
    ],
)
def test_guard(prompt: str, pieces: list[str], expected: str) -> None:
    assert guarded(prompt, pieces)[0] == expected


def test_nothing_is_released_before_the_reply_is_judged() -> None:
    _, seen = guarded(ITALY, ["What", " is", " the", " capital", " of", " Italy?", " Rome."])
    assert seen[:5] == [""] * 5  # still possibly an echo: nothing said yet
    _, seen = guarded("Hello, who are you?", ["Без", " ин"])
    assert seen == ["", ""]


def test_a_marker_ends_the_reply() -> None:
    guard = ReplyGuard(ITALY)
    assert guard.push("Rome is the capital. User: and") == "Rome is the capital."
    assert guard.ended and guard.push(" more") == "Rome is the capital."


def test_degenerate_replies() -> None:
    assert is_echo(ITALY, "What is the capital of Italy?")
    assert not is_echo(ITALY, "User: What is the capital of Italy?")
    assert wrong_script("Hello, who are you?", "Без интернационы, есть?")
    assert not wrong_script("How do you say hello in Russian?", "Hello is Привет in Russian.")
    assert not wrong_script("Расскажи анекдот", "Без интернета я умею немного.")
    assert not wrong_script("2 + 2?", "4")
    assert degenerate(ITALY, " ") and degenerate(ITALY, "what is the capital of italy")
    assert not degenerate(ITALY, "Rome.")


def test_plain_text_shows_memory_then_the_message() -> None:
    memory = MemoryContext(
        ("The user's name is Alex.",),
        (Exchange("Hi there", "Hello Alex!"), Exchange("I like jazz", "Great taste.")),
    )
    request = LLMRequest(system="s", user="Who am I?", prompt="Who am I?", memory=memory)
    assert plain_text(request) == (
        "What you know about this user:\n- The user's name is Alex.\n\n"
        "Recent conversation, oldest first:\n"
        "User: Hi there\nAssistant: Hello Alex!\nUser: I like jazz\nAssistant: Great taste.\n\n"
        "User: Who am I?"
    )
    assert plain_text(LLMRequest(system="s", user="Hi", prompt="Hi")) == "User: Hi"
