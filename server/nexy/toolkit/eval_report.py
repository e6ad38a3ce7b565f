"""What ``eval_embedded.py`` prints: a table per family, the headline numbers and the goals.

Goals (issue 12): action accuracy ≥ 95 %, language match 100 %, no reply with role markers or
echoes, and turn 10's time to first audio at most 1.2 × turn 1's on one device; and (issue 14)
no failed turn: each must end normally with audio, whatever the accuracy allows. Single turns
are noisy on a shared machine, so the ratio goal uses the medians of turns 8–10 and 1–3; both
raw values are printed next to it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from nexy.toolkit.eval_embedded import EvalRun, Score
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, verdict

MIN_ACCURACY = 0.95
MAX_RATIO = 1.2
_NEIGHBOURS = 3  # turns on each end whose median stands for "turn 1" and "turn 10"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def median_p95(values: list[float]) -> tuple[float | None, float | None]:
    """Median and nearest-rank 95th percentile (None for no values)."""
    if not values:
        return None, None
    ordered = sorted(values)
    rank = max(1, -(-95 * len(ordered) // 100))  # ceil(0.95 n)
    return statistics.median(ordered), ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Ratio:
    first: float | None
    last: float | None
    smoothed: float | None  # median of the last turns / median of the first turns
    turns: tuple[float | None, ...] = ()  # every turn's time to first audio, in order

    @staticmethod
    def of(ttfa: list[float | None]) -> Ratio:
        if not ttfa or any(t is None for t in ttfa):
            first, last = (ttfa[0], ttfa[-1]) if ttfa else (None, None)
            return Ratio(first, last, None, tuple(ttfa))
        times = [t for t in ttfa if t is not None]
        span = min(_NEIGHBOURS, len(times))
        head, tail = statistics.median(times[:span]), statistics.median(times[-span:])
        return Ratio(times[0], times[-1], tail / head if head > 0 else None, tuple(ttfa))

    @property
    def raw(self) -> float | None:
        if self.first is None or self.last is None or self.first <= 0:
            return None
        return self.last / self.first


@dataclass(frozen=True, slots=True)
class Summary:
    """The headline numbers of one run."""

    cases: int
    actions_ok: int
    language_ok: int
    markers: int
    intent_ttfa: tuple[float | None, float | None]
    model_ttfa: tuple[float | None, float | None]
    ratio: Ratio
    ratio_turns: int
    failed_turns: int  # ended in an error status, cut off, or silent (cases and ratio run)

    @staticmethod
    def of(run: EvalRun) -> Summary:
        def ttfa(kind: str) -> list[float]:
            return [
                s.reply.first_audio_s
                for s in run.scores
                if s.case.kind == kind and s.reply.first_audio_s is not None
            ]

        return Summary(
            cases=len(run.scores),
            actions_ok=sum(s.action_ok for s in run.scores),
            language_ok=sum(s.language_ok for s in run.scores),
            markers=sum(s.marker for s in run.scores),
            intent_ttfa=median_p95(ttfa("intent")),
            model_ttfa=median_p95(ttfa("model")),
            ratio=Ratio.of(run.ratio_ttfa),
            ratio_turns=len(run.ratio_ttfa),
            failed_turns=sum(not s.reply.ended or s.reply.first_audio_s is None for s in run.scores)
            + sum(t is None for t in run.ratio_ttfa),
        )

    @property
    def accuracy(self) -> float:
        return self.actions_ok / self.cases if self.cases else 0.0


def family_table(scores: list[Score]) -> list[str]:
    """A markdown table: per family, cases, right actions, language matches, markers, TTFA."""
    by_family: dict[str, list[Score]] = defaultdict(list)
    for scored in scores:
        by_family[scored.case.family].append(scored)
    lines = [
        "| family | cases | action right | language match | markers/echoes | median TTFA ms |",
        "|---|---|---|---|---|---|",
    ]
    for family, group in by_family.items():
        times = [s.reply.first_audio_s for s in group if s.reply.first_audio_s is not None]
        median = median_p95(times)[0]
        lines.append(
            f"| {family} | {len(group)} | {sum(s.action_ok for s in group)} "
            f"| {sum(s.language_ok for s in group)} | {sum(s.marker for s in group)} "
            f"| {_ms(median)} |"
        )
    return lines


def headline(summary: Summary) -> list[str]:
    ratio = summary.ratio
    intent, model = summary.intent_ttfa, summary.model_ttfa
    smoothed = "—" if ratio.smoothed is None else f"{ratio.smoothed:.2f}"
    raw = "—" if ratio.raw is None else f"{ratio.raw:.2f}"
    return [
        f"- action accuracy (command and arguments): {summary.actions_ok}/{summary.cases} "
        f"= {_pct(summary.actions_ok, summary.cases)}",
        f"- language match: {summary.language_ok}/{summary.cases} "
        f"= {_pct(summary.language_ok, summary.cases)}",
        f"- replies with role markers or echoes: {summary.markers}",
        f"- time to first audio, intents: median {_ms(intent[0])} ms, p95 {_ms(intent[1])} ms",
        f"- time to first audio, model answers: median {_ms(model[0])} ms, p95 {_ms(model[1])} ms",
        f"- one device, {summary.ratio_turns} turns: turn 1 {_ms(ratio.first)} ms, "
        f"turn {summary.ratio_turns} {_ms(ratio.last)} ms (ratio {raw}); "
        f"median of the last {_NEIGHBOURS} / first {_NEIGHBOURS}: {smoothed} "
        f"(every turn, ms: {', '.join(_ms(t) for t in ratio.turns)})",
        f"- failed turns (error status, cut off or silent): {summary.failed_turns}",
    ]


def failure_lines(scores: list[Score]) -> list[str]:
    """Each wrong or silent case: the prompt, what was expected and what came back."""
    lines = []
    for s in scores:
        problems = [
            name
            for name, bad in (("action", not s.action_ok), ("language", not s.language_ok))
            if bad
        ] + (["marker/echo"] if s.marker else [])
        if s.reply.first_audio_s is None:
            problems.append("no audio")  # not a goal of its own, but a voice reply must speak
        if not problems:
            continue
        want = f"{s.case.command or 'no action'} {s.case.args or ''}".strip()
        got = f"{s.reply.command or 'no action'} {s.reply.args or ''}".strip()
        lines.append(
            f"- [{', '.join(problems)}] «{s.case.prompt}»: expected {want}, got {got} "
            f"({s.reply.status}); said «{s.reply.text.strip()[:120]}»"
        )
    return lines


def goal_checks(summary: Summary) -> list[Check]:
    """One verdict per issue-12 goal; a failed one makes the script exit with 1."""
    ratio = summary.ratio.smoothed
    return [
        verdict(
            "eval.accuracy",
            summary.accuracy >= MIN_ACCURACY,
            say(
                f"Action accuracy {summary.accuracy:.1%} (goal ≥ 95 %)",
                f"Точность действий {summary.accuracy:.1%} (цель ≥ 95 %)",
            ),
            say(
                f"Action accuracy {summary.accuracy:.1%} below the 95 % goal",
                f"Точность действий {summary.accuracy:.1%} ниже цели 95 %",
            ),
        ),
        verdict(
            "eval.language",
            summary.cases > 0 and summary.language_ok == summary.cases,
            say(
                "The reply's language matched the request's in every case",
                "Язык ответа совпал с языком запроса во всех случаях",
            ),
            say(
                f"The reply's language did not match in {summary.cases - summary.language_ok} "
                "cases",
                f"Язык ответа не совпал в {summary.cases - summary.language_ok} случаях",
            ),
        ),
        verdict(
            "eval.markers",
            summary.markers == 0,
            say(
                "No reply with role markers or an echo of the request",
                "Ответов с ролевыми метками или эхом запроса нет",
            ),
            say(
                f"Replies with role markers or an echo of the request: {summary.markers}",
                f"Ответов с ролевыми метками или эхом запроса: {summary.markers}",
            ),
        ),
        verdict(
            "eval.ratio",
            ratio is not None and ratio <= MAX_RATIO,
            say("Turn 10 to turn 1 latency: ", "Задержка 10-го хода к 1-му: ")
            + say(f"{ratio or 0:.2f} (goal ≤ 1.2)", f"{ratio or 0:.2f} (цель ≤ 1.2)"),
            say("Turn 10 to turn 1 latency: ", "Задержка 10-го хода к 1-му: ")
            + (
                say("some turns have no audio", "нет аудио в части ходов")
                if ratio is None
                else say(f"{ratio:.2f} (goal ≤ 1.2)", f"{ratio:.2f} (цель ≤ 1.2)")
            ),
        ),
        verdict(
            "eval.turns",
            summary.failed_turns == 0,
            say(
                "Every turn ended normally and with sound",
                "Все ходы завершились нормально и со звуком",
            ),
            say(
                f"Turns with an error, cut off or silent: {summary.failed_turns}",
                f"Ходов с ошибкой, обрывом или без звука: {summary.failed_turns}",
            ),
        ),
    ]


def markdown(run: EvalRun, note: str = "") -> str:
    """The BENCHMARKS.md section: headline numbers, the family table and the misses."""
    summary = Summary.of(run)
    misses = failure_lines(run.scores) or ["- none"]
    return "\n".join(
        [
            "## Embedded assistant evaluation — `server/scripts/eval_embedded.py`",
            "",
            *([note, ""] if note else []),
            *headline(summary),
            "",
            *family_table(run.scores),
            "",
            "Cases scored wrong:",
            "",
            *misses,
        ]
    )
