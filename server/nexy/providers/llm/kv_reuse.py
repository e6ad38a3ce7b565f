"""Keep what llama.cpp already evaluated when a conversation's window slides.

llama-cpp-python reuses the longest common prefix of the context and the next prompt. A window of
recent exchanges breaks that prefix as soon as its oldest exchange leaves: everything after the
system prompt would be evaluated again, so every few turns one would be slower by the whole
history. Here the span that left is cut out of the KV cache instead and the tokens after it move
back into place (llama.cpp shifts their rotary positions), so the library's own prefix check then
finds the system prompt, the exchanges still shown and the last question already evaluated.

The moved tokens keep what they computed while the dropped exchange was still before them; a
small model's reply does not change noticeably, and the cost of an evaluation does not come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp

_MIN_MATCH = 8  # fewer reusable tokens than this are not worth moving the cache for
_PROBE = 4  # tokens compared before a candidate position is measured in full


@dataclass(frozen=True, slots=True)
class Drop:
    """Cut ``length`` tokens at ``start`` from the context; ``reused`` tokens then line up."""

    start: int
    length: int
    reused: int


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def plan_drop(context: Sequence[int], prompt: Sequence[int]) -> Drop | None:
    """The one span to cut from ``context`` that lets the most of ``prompt`` be reused.

    None when cutting gains fewer than a few tokens over the plain common prefix.
    """
    start = _common_prefix(context, prompt)
    rest = prompt[start:]
    if len(rest) < _MIN_MATCH:
        return None
    probe = list(rest[:_PROBE])
    best: Drop | None = None
    for offset in range(start + 1, len(context) - _MIN_MATCH + 1):
        if list(context[offset : offset + _PROBE]) != probe:
            continue
        reused = _common_prefix(context[offset:], rest)
        if reused >= _MIN_MATCH and (best is None or reused > best.reused):
            best = Drop(start, offset - start, reused)
    return best


def reuse_context(model: llama_cpp.Llama, prompt: Sequence[int]) -> int:
    """Cut the span ``plan_drop`` finds out of ``model``'s context; the tokens cut (0: none).

    Call on the model's own thread right before generating from ``prompt``.
    """
    used = model.n_tokens
    memory = llama_cpp.llama_get_memory(model.ctx)
    if used == 0 or memory is None or not llama_cpp.llama_memory_can_shift(memory):
        return 0
    drop = plan_drop(model.input_ids[:used].tolist(), prompt)
    if drop is None:
        return 0
    end = drop.start + drop.length
    if not llama_cpp.llama_memory_seq_rm(memory, 0, drop.start, end):
        return 0
    llama_cpp.llama_memory_seq_add(memory, 0, end, used, -drop.length)
    # The library's own record of what the context holds must say the same as the cache.
    model.input_ids[drop.start : used - drop.length] = model.input_ids[end:used].copy()
    model.n_tokens = used - drop.length
    return drop.length
