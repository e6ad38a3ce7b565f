"""Check results and the guide-style printing (✅/❌ lines, then one summary line).

A :class:`Check` has a stable ``name`` (tests and tools match on it) and a human ``detail``
sentence (what the user reads). A :class:`Report` collects checks and, when given a printer,
prints each one as it is added, so a slow run shows progress instead of silence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from nexy.toolkit.lang import say

log = logging.getLogger(__name__)

PASS, FAIL, SKIP = "✅", "❌", "⚠️"

# Exit codes shared by every script: a failed check is not a usage error or an outage.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Printer = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict: ``ok`` is False only for a real failure; a skip is not a failure."""

    name: str
    ok: bool
    detail: str = ""
    skipped: bool = False

    @property
    def icon(self) -> str:
        return SKIP if self.skipped else PASS if self.ok else FAIL

    def line(self) -> str:
        return f"{self.icon} {self.detail or self.name}"


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str) -> Check:
    return Check(name, False, detail)


def skipped(name: str, detail: str) -> Check:
    return Check(name, True, detail, skipped=True)


def verdict(name: str, ok: bool, good: str, bad: str) -> Check:
    """The common case: one condition, one sentence for each outcome."""
    return Check(name, ok, good if ok else bad)


def rpc_error_text(exc: BaseException) -> str:
    """A one-line description of an RPC or network error (no traceback)."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details() or ''}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


@dataclass
class Report:
    """The checks of one run; prints them as they arrive when ``printer`` is set."""

    printer: Printer | None = None
    checks: list[Check] = field(default_factory=list)

    def _print(self, text: str) -> None:
        if self.printer is not None:
            self.printer(text)

    def step(self, text: str) -> None:
        """Announce what is being tested next (``🧪 Testing …``)."""
        self._print(f"🧪 {text}...")

    def note(self, text: str) -> None:
        """An indented detail line (``   → Got: text_chunk``)."""
        self._print(f"   → {text}")

    def add(self, *checks: Check) -> None:
        for check in checks:
            self.checks.append(check)
            self._print(check.line())

    async def run(self, name: str, work: Awaitable[Check | list[Check]]) -> None:
        """Await one check; an unexpected exception becomes a failed check, never a crash.

        One broken check must not hide the verdicts of the others, so errors are recorded
        with their gRPC status or exception type and the run goes on.
        """
        try:
            result = await work
        except Exception as exc:  # the boundary of one check: report it, keep going
            log.debug("check %s raised", name, exc_info=True)
            error = rpc_error_text(exc)
            detail = say(
                f"{name}: unexpected error — {error}", f"{name}: неожиданная ошибка — {error}"
            )
            self.add(failed(name, detail))
            return
        self.add(*(result if isinstance(result, list) else [result]))

    def get(self, name: str) -> Check:
        """The check called ``name`` (KeyError when it never ran)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failures

    def summary(self, success: str | None = None) -> str:
        """One line: ``success`` (default "All checks passed!") or which checks failed."""
        skips = sum(c.skipped for c in self.checks)
        extra = say(f" (skipped: {skips})", f" (пропущено: {skips})") if skips else ""
        if self.ok:
            success = success or say("All checks passed!", "Все проверки пройдены успешно!")
            return f"{PASS} {success}{extra}"
        if not self.checks:
            return f"{FAIL} " + say("No check was run", "Ни одна проверка не выполнена")
        names = ", ".join(c.name for c in self.failures)
        bad, total = len(self.failures), len(self.checks)
        return f"{FAIL} " + say(
            f"{bad} of {total} failed: {names}{extra}",
            f"Не пройдено {bad} из {total}: {names}{extra}",
        )

    def finish(self, success: str | None = None) -> int:
        """Print the summary line and return the script's exit code."""
        self._print(self.summary(success))
        return EXIT_OK if self.ok else EXIT_FAILED
