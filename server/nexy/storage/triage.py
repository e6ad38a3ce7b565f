"""Whether a queued write that failed is set aside (never retried) or retried later.

A write the database refuses must not hold the queue hostage, yet an outage must never cost a
write. ``nexy.storage.verdict`` reads the database's own verdict on each failure:

* refused (a NUL byte, a value too long or out of range, a constraint): the row is moved to the
  spool's ``dead`` table at once, with the driver's message, and the queue moves on;
* outage (connection, timeout, lock, missing schema): the same row is retried with backoff,
  for as long as it takes;
* unknown: the database is probed with a trivial query. If the probe fails it is an outage. If
  the probe works, the row is the problem: after ``max_attempts`` such failures in a row it is
  set aside too. Without a probe an unknown failure is treated as an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nexy.storage.database import describe_error
from nexy.storage.verdict import Verdict, classify

log = logging.getLogger("nexy.storage.outbox")  # the outbox's decisions, under its name

Probe = Callable[[], Awaitable[bool]]  # whether the database answers a trivial query


class Triage:
    """Judges one failed write at a time; counts strikes against the row at the head."""

    def __init__(self, probe: Probe | None, max_attempts: int) -> None:
        if max_attempts < 1:
            raise ValueError("need max_attempts >= 1")
        self._probe = probe
        self._max_attempts = max_attempts
        self._strikes: tuple[int, int] = (0, 0)  # (seq, failures while the database answered)

    def reset(self) -> None:
        """A write left the queue: the next failure starts a new count."""
        self._strikes = (0, 0)

    async def set_aside(self, seq: int, exc: Exception) -> bool:
        """Refused: yes. Outage: no. Unknown: once it failed too often while the DB answered."""
        verdict = classify(exc)
        if verdict is not Verdict.UNKNOWN:
            return verdict is Verdict.REFUSED
        if self._probe is None or not await self._probe():
            return False
        strikes = self._strikes[1] + 1 if self._strikes[0] == seq else 1
        self._strikes = (seq, strikes)
        if strikes < self._max_attempts:
            log.warning(
                "queued write %d failed while the database answers (%d of %d): %s",
                seq,
                strikes,
                self._max_attempts,
                describe_error(exc),
            )
            return False
        return True
