"""How ``fuzz_smoke.py`` judges each answer, and the tables it prints at the end.

Every call ends in one of three classes: ``ok`` (status OK and well-formed), ``expected`` (a
refusal the contract allows: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, …) or ``bad``: UNKNOWN or
INTERNAL, any other status, a stream that ended OK without ``end_message``/``error_message``,
an answer that cannot be decoded, a request the spec says must be refused that was served, or
a text that shows internals (a traceback, an exception class name, a file path).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from nexy.toolkit.fuzz_cases import STREAMING_RPCS

OK, EXPECTED, BAD = "ok", "expected", "bad"
EXPECTED_CODES = frozenset(
    {
        "INVALID_ARGUMENT",
        "RESOURCE_EXHAUSTED",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "CANCELLED",
        "DEADLINE_EXCEEDED",
    }
)
TERMINAL = ("end_message", "error_message")
# What a client-facing text must never contain: stack traces, exception classes, source paths.
LEAK = re.compile(
    r"Traceback|File \"|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|\.py\b"
    r"|/(?:usr|home|opt|tmp|var|work|srv|app)/|site-packages"
)


@dataclass
class Outcome:
    """What one call returned, as the classifier needs it."""

    rpc: str
    code: str
    details: str = ""
    kinds: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # error/end/status messages shown to users
    cancelled_by_tool: bool = False
    undecodable: bool = False

    @property
    def served(self) -> bool:
        """Whether the server did real work: text, audio, an action or welcome metadata."""
        content = {"text_chunk", "audio_chunk", "action_message", "metadata"}
        return any(kind in content for kind in self.kinds)


def classify(outcome: Outcome, must_refuse: bool, allowed: frozenset[str]) -> tuple[str, str]:
    """(class, reason): the reason names the problem for ``bad`` and the status otherwise."""
    if outcome.undecodable:
        return BAD, "answer is not a valid protobuf message"
    known = outcome.code == "OK" or outcome.code in EXPECTED_CODES or outcome.code in allowed
    if not known:
        return BAD, f"status {outcome.code}: {outcome.details[:80]}"
    leaked = next((t for t in [outcome.details, *outcome.texts] if LEAK.search(t)), None)
    if leaked is not None:
        return BAD, f"internals in a client-facing text: {leaked[:80]!r}"
    if must_refuse and outcome.served:
        return BAD, "served a request the spec says must be refused"
    if outcome.code != "OK":
        return EXPECTED, outcome.code
    unfinished = outcome.kinds[-1:] not in (["end_message"], ["error_message"])
    if outcome.rpc in STREAMING_RPCS and not outcome.cancelled_by_tool and unfinished:
        return BAD, "stream ended OK without end_message/error_message"
    return OK, "OK"


@dataclass
class Tally:
    """Counts per family and class, status codes, and one example per kind of problem."""

    classes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    codes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    problems: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, family: str, outcome: Outcome, verdict: str, reason: str) -> None:
        self.classes[family][verdict] += 1
        self.codes[family][outcome.code] += 1
        if verdict == BAD:
            label = f"{family}/{outcome.rpc}: {reason.split(':')[0]}"
            self.problems[label] += 1
            self.examples.setdefault(label, reason)

    @property
    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.classes.values())

    def count(self, verdict: str) -> int:
        return sum(c[verdict] for c in self.classes.values())

    def table(self) -> list[str]:
        lines = [f"{'family':<16}{'requests':>9}{'ok':>7}{'expected':>10}{'bad':>6}  codes"]
        for family in sorted(self.classes):
            c = self.classes[family]
            codes = ", ".join(f"{k}={v}" for k, v in self.codes[family].most_common())
            total = sum(c.values())
            lines.append(f"{family:<16}{total:>9}{c[OK]:>7}{c[EXPECTED]:>10}{c[BAD]:>6}  {codes}")
        lines.append(
            f"{'total':<16}{self.requests:>9}{self.count(OK):>7}"
            f"{self.count(EXPECTED):>10}{self.count(BAD):>6}"
        )
        for label, n in self.problems.most_common():
            lines.append(f"  BAD ×{n} {label} — e.g. {self.examples[label]}")
        return lines


@dataclass
class Canaries:
    """Normal turns measured before, during and after the fuzz: served or not, time to audio."""

    ttfa: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    retries: Counter[str] = field(default_factory=Counter)  # RESOURCE_EXHAUSTED, then retried

    def add(self, phase: str, first_audio_s: float | None, status: str) -> None:
        if first_audio_s is None:
            self.refused[phase].append(status)
        else:
            self.ttfa[phase].append(first_audio_s)

    def served(self, phase: str) -> int:
        return len(self.ttfa[phase])

    def total(self, phase: str) -> int:
        return len(self.ttfa[phase]) + len(self.refused[phase])

    def line(self, phase: str) -> str:
        times = self.ttfa[phase]
        median = f"{statistics.median(times) * 1000:.0f} ms" if times else "n/a"
        worst = f"{max(times) * 1000:.0f} ms" if times else "n/a"
        failed = dict(Counter(self.refused[phase]))
        extra = f", retried after RESOURCE_EXHAUSTED {self.retries[phase]}"
        extra += f", not served: {failed}" if failed else ""
        return (
            f"canary {phase:<7} served {self.served(phase)}/{self.total(phase)}, "
            f"time to first audio median {median}, worst {worst}{extra}"
        )


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"
