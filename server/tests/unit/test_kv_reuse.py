"""Which span of an evaluated context is cut so the next prompt reuses the most of it."""

from __future__ import annotations

from nexy.providers.llm.kv_reuse import Drop, plan_drop

SYSTEM = list(range(100, 120))
OLD, KEPT, LAST = list(range(200, 230)), list(range(300, 340)), list(range(400, 420))
QUESTION = list(range(500, 512))


def test_the_exchange_that_left_the_window_is_cut() -> None:
    context = SYSTEM + OLD + KEPT + LAST  # last turn: the oldest exchange, one kept, the reply
    prompt = SYSTEM + KEPT + LAST + QUESTION
    drop = plan_drop(context, prompt)
    assert drop == Drop(start=len(SYSTEM), length=len(OLD), reused=len(KEPT + LAST))


def test_a_growing_window_needs_no_cut() -> None:
    context = SYSTEM + KEPT + LAST
    assert plan_drop(context, context + QUESTION) is None


def test_nothing_in_common_after_the_prefix_needs_no_cut() -> None:
    assert plan_drop(SYSTEM + OLD, SYSTEM + KEPT) is None


def test_a_few_matching_tokens_are_not_worth_a_cut() -> None:
    context = SYSTEM + OLD + KEPT[:5] + LAST
    assert plan_drop(context, SYSTEM + KEPT[:5] + QUESTION) is None


def test_the_longest_reusable_run_wins() -> None:
    # KEPT's first ten tokens appear twice after the prefix; only the later run goes on.
    context = SYSTEM + OLD + KEPT[:10] + OLD + KEPT + LAST
    prompt = SYSTEM + KEPT + LAST
    drop = plan_drop(context, prompt)
    assert drop == Drop(len(SYSTEM), 2 * len(OLD) + 10, len(KEPT + LAST))
