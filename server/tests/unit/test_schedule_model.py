"""The ideal schedule bench_schedule.py measures against, from the scripted providers' timing."""

from __future__ import annotations

import json

import pytest
from scripts.schedule_model import LLM_FIRST_MS, Case, ideal, synthesis_seconds


def test_a_reply_in_one_chunk_is_heard_after_the_first_token_and_the_first_piece() -> None:
    case = Case(chunk_chars=4096, tts_first_ms=150, factor=0.2, sentences=3, command=True)
    best = ideal(case)
    assert best.first_audio == pytest.approx((LLM_FIRST_MS + 150) / 1000)
    # All sentences start at once; the end is the longest one's last piece.
    last = max(synthesis_seconds(t, 150, 0.2)[1] for t in case.sentence_texts)
    assert best.end == pytest.approx(LLM_FIRST_MS / 1000 + last)


def test_small_chunks_make_later_sentences_complete_later() -> None:
    case = Case(chunk_chars=4, tts_first_ms=20, factor=0.05, sentences=2, command=False)
    reply = case.reply
    first_end = reply.index("one.") + len("one.") - 1
    assert ideal(case).first_audio == pytest.approx(case.arrival(first_end) + 0.02)
    assert json.loads(reply) == {"text": "This is sentence one. This is sentence two."}


def test_the_command_after_the_text_can_decide_the_end() -> None:
    # Instant speech: the turn ends when the LLM has sent the command.
    case = Case(chunk_chars=4, tts_first_ms=0, factor=0.0, sentences=1, command=True)
    assert ideal(case).end == pytest.approx(case.arrival(len(case.reply) - 1))
