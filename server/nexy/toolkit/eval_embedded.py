"""``eval_embedded.py``: the evaluation set (``eval_set.yaml``) run against a real server, scored.

Scoring rules, one case at a time:

* **Action**: right when the command is the expected one (none expected: no action may
  arrive) and the arguments have exactly the expected keys. Canonical values (``app_name``,
  ``url``, ``limit``) must be equal; free text (``message``, ``task``, ``query``, ``contact``)
  is compared case- and punctuation-insensitively. A case with ``says`` also needs that text
  in the reply (same normalisation). A turn that fails or ends without ``end_message`` is wrong.
* **Language**: the reply's letters, after dropping URLs and domains, words with digits and
  words of the prompt or the expected arguments (app names, contacts), are mostly Cyrillic for
  ``ru`` and mostly Latin for ``en``; a reply without letters left is a mismatch.
* **Role markers and echoes**: the reply contains ``User:``, ``Assistant:``, ``System:``,
  ``Пользователь:``, ``Ассистент:`` or ``<|``, equals the prompt, or starts with it (prompts
  of three words or more: "Hi" → "Hi! How can I help?" is not an echo) — all normalised.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
import yaml

from nexy.toolkit.calls import commit, run_turn, stub_for
from nexy.toolkit.connection import Target, new_device
from nexy.turn.actions import COMMANDS

Args = dict[str, str | int]
CANONICAL_ARGS = frozenset({"app_name", "url", "limit"})
LANGUAGES = ("en", "ru")
KINDS = ("intent", "model")
_BUSY_RETRIES = 3  # RESOURCE_EXHAUSTED (a per-device limit): wait and ask again
_BUSY_WAIT_S = 2.0

_MARKER = re.compile(r"\b(?:user|assistant|system|пользователь|ассистент)\s*:|<\|", re.I)
_URLISH = re.compile(r"\S*(?:\w[./]\w|\d)\S*")  # domains, URLs, paths, numbers, times
_LETTERS = re.compile(r"[^\W\d_]+")
_CYRILLIC = re.compile(r"[а-яё]", re.I)


@dataclass(frozen=True, slots=True)
class Case:
    """One prompt of the set and what a right answer looks like."""

    prompt: str
    lang: str
    family: str
    kind: str = "intent"
    command: str | None = None
    args: Args = field(default_factory=dict)
    device: str | None = None  # cases sharing a device run in order on one hardware id
    says: str = ""


@dataclass(frozen=True, slots=True)
class EvalSet:
    cases: tuple[Case, ...]
    ratio_prompt: str
    ratio_turns: int


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answered to one case, with the client-side time to first audio."""

    text: str
    command: str | None = None
    args: Args = field(default_factory=dict)
    first_audio_s: float | None = None
    ended: bool = True
    status: str = "OK"


@dataclass(frozen=True, slots=True)
class Score:
    case: Case
    reply: Reply
    action_ok: bool
    language_ok: bool
    marker: bool


def _case(raw: Mapping[str, Any], family: str) -> Case:
    command = raw.get("command")
    case = Case(
        prompt=str(raw["prompt"]),
        lang=str(raw["lang"]),
        family=family,
        kind=str(raw.get("kind", "intent")),
        command=None if command is None else str(command),
        args=dict(raw.get("args") or {}),
        device=raw.get("device"),
        says=str(raw.get("says", "")),
    )
    problem = (
        f"language {case.lang!r}" if case.lang not in LANGUAGES else
        f"kind {case.kind!r}" if case.kind not in KINDS else
        f"command {case.command!r}" if case.command not in (None, *COMMANDS) else ""
    )  # fmt: skip
    if problem:
        raise ValueError(f"eval set, {case.prompt!r}: unknown {problem}")
    return case


def load_eval_set(path: Path | None = None) -> EvalSet:
    """The packaged set (``nexy/toolkit/eval_set.yaml``) or another file of the same shape."""
    source = path or resources.files("nexy.toolkit").joinpath("eval_set.yaml")
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    cases = [_case(raw, family) for family, items in data["families"].items() for raw in items]
    ratio = data["ratio_run"]
    return EvalSet(tuple(cases), str(ratio["prompt"]), int(ratio["turns"]))


def normalize(text: str) -> str:
    """Case-folded words only: punctuation and spacing do not count."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def args_match(expected: Mapping[str, object], got: Mapping[str, object]) -> bool:
    if set(expected) != set(got):
        return False
    for key, want in expected.items():
        value = got[key]
        if key in CANONICAL_ARGS:
            if value != want:
                return False
        elif normalize(str(value)) != normalize(str(want)):
            return False
    return True


def reply_language(text: str, ignore: str = "") -> str | None:
    """``ru``/``en`` by the majority of letters, ignoring names and URLs; None: no letters."""
    skip = set(normalize(_URLISH.sub(" ", ignore)).split())
    words = [w for w in _LETTERS.findall(_URLISH.sub(" ", text)) if w.casefold() not in skip]
    cyrillic = sum(len(_CYRILLIC.findall(w)) for w in words)
    latin = sum(len(w) for w in words) - cyrillic
    if not cyrillic and not latin:
        return None
    return "ru" if cyrillic > latin else "en"


def is_marker_or_echo(reply: str, prompt: str) -> bool:
    if _MARKER.search(reply):
        return True
    said, asked = normalize(reply), normalize(prompt)
    if not said or not asked:
        return False
    starts = len(asked.split()) >= 3 and (said + " ").startswith(asked + " ")
    return said == asked or starts


def score(case: Case, reply: Reply) -> Score:
    """The verdicts for one answered case (rules in the module docstring)."""
    action_ok = (
        reply.ended
        and reply.command == case.command
        and (case.command is None or args_match(case.args, reply.args))
        and normalize(case.says) in normalize(reply.text)
    )
    names = " ".join([case.prompt, *(str(v) for v in case.args.values())])
    language_ok = reply_language(reply.text, names) == case.lang
    return Score(case, reply, action_ok, language_ok, is_marker_or_echo(reply.text, case.prompt))


async def ask(stub: Any, prompt: str, hardware_id: str, deadline_s: float) -> Reply:
    """One COMMIT read to its end; a per-device limit is waited out, not scored as a failure."""
    for attempt in range(_BUSY_RETRIES + 1):
        result = await run_turn(stub, commit(prompt, hardware_id=hardware_id), deadline_s)
        if result.code != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == _BUSY_RETRIES:
            break
        await asyncio.sleep(_BUSY_WAIT_S)
    command: str | None = None
    args: Args = {}
    if result.actions:
        payload = json.loads(result.actions[-1].action_json)
        command, args = payload.get("command"), dict(payload.get("args") or {})
    status = result.code.name if result.code is not None else "no status"
    text = result.text or result.error_message
    return Reply(text, command, args, result.first_audio_s, result.ended, status)


@dataclass
class EvalRun:
    """Every scored case, then the ratio run's times to first audio (None: no audio)."""

    scores: list[Score] = field(default_factory=list)
    ratio_ttfa: list[float | None] = field(default_factory=list)


Progress = Callable[[Score], None]


async def run_eval(where: Target, eval_set: EvalSet, progress: Progress | None = None) -> EvalRun:
    """Run every case one at a time (concurrent turns would blur the timings), then the ratio
    run: each case on a fresh device unless it belongs to a conversation."""
    run = EvalRun()
    devices: dict[str, str] = {}
    async with where.channel() as channel:
        stub = stub_for(channel)
        for case in eval_set.cases:
            hardware_id = new_device()
            if case.device is not None:
                hardware_id = devices.setdefault(case.device, hardware_id)
            scored = score(case, await ask(stub, case.prompt, hardware_id, where.timeout))
            run.scores.append(scored)
            if progress is not None:
                progress(scored)
        device = new_device()
        for _ in range(eval_set.ratio_turns):
            reply = await ask(stub, eval_set.ratio_prompt, device, where.timeout)
            run.ratio_ttfa.append(reply.first_audio_s if reply.ended else None)
    return run
