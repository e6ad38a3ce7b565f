"""Why a database write failed, in the database's own words: the row, the database, or unknown.

SQLAlchemy's asyncpg dialect reports most server errors as a plain ``DBAPIError``, so the
exception class says little. The verdict comes from the error chain instead (SQLAlchemy's
error → the adapter's ``.orig`` → the driver's ``__cause__``):

* a PostgreSQL SQLSTATE decides first: class 22 (data exception: a NUL byte, a string too long,
  a number out of range) and 23 (integrity) mean the row is refused; 08 (connection), 53
  (resources), 57P (shutdown), 40 (rollback), 42 (no table, no privilege: a deployment fault)
  and the like mean the database is at fault;
* SQLite's error name (``SQLITE_CONSTRAINT``, ``SQLITE_TOOBIG``, ``SQLITE_MISMATCH`` → refused;
  ``SQLITE_BUSY``, ``SQLITE_LOCKED``, ``SQLITE_IOERR``, ``SQLITE_FULL`` … → outage);
* socket, timeout and closed-connection errors are outages;
* a value that could not even be encoded or bound (``ValueError``, ``TypeError``,
  ``OverflowError``, a ``StatementError`` that is no ``DBAPIError``) never reached the database
  and never will: refused;
* anything else is unknown. The outbox retries it and sets the row aside only when it keeps
  failing while the database answers a probe (see ``nexy.storage.outbox``).
"""

from __future__ import annotations

import enum
import sqlite3

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError


class Verdict(enum.Enum):
    """Whose fault a failed write is."""

    REFUSED = "refused"  # the row: retrying can never help
    OUTAGE = "outage"  # the database or the network: retry later
    UNKNOWN = "unknown"  # retry, but watch whether it is always this one row


_REFUSED_CLASSES = frozenset({"22", "23"})
# 08 connection, 25 transaction state, 28 authorisation, 3D/3F catalog/schema, 40 rollback
# (deadlock, serialisation), 42 schema or privilege, 53 resources, 55 object state (lock not
# available), 57 operator intervention (shutdown, cancel, idle timeout), 58 system (I/O), XX.
_OUTAGE_CLASSES = frozenset(
    {"08", "25", "28", "3D", "3F", "40", "42", "53", "55", "57", "58", "XX"}
)
_SQLITE_REFUSED = ("SQLITE_CONSTRAINT", "SQLITE_TOOBIG", "SQLITE_MISMATCH", "SQLITE_RANGE")
_SQLITE_OUTAGE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_NOMEM",
    "SQLITE_READONLY",
    "SQLITE_PROTOCOL",
    "SQLITE_INTERRUPT",
    "SQLITE_ERROR",  # "no such table": the schema is missing, a deployment fault
)
_CHAIN_LIMIT = 8  # bounded: a chain could in principle loop back on itself


def error_chain(exc: BaseException) -> list[BaseException]:
    """The exception, then the driver errors it wraps, outermost first."""
    chain = [exc]
    current = exc
    for _ in range(_CHAIN_LIMIT):
        inner: BaseException | None = None
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            inner = current.orig
        elif current.__cause__ is not None:
            inner = current.__cause__
        if inner is None or inner in chain:
            break
        chain.append(inner)
        current = inner
    return chain


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE anywhere in the chain (asyncpg's ``sqlstate``, ``pgcode``)."""
    for link in error_chain(exc):
        for name in ("sqlstate", "pgcode"):
            code = getattr(link, name, None)
            if isinstance(code, str) and len(code) == 5:
                return code.upper()
    return None


def classify(exc: BaseException) -> Verdict:
    """The verdict on a failed write (see the module docstring for the rules)."""
    code = sqlstate(exc)
    if code is not None:
        return _by_sqlstate(code)
    chain = error_chain(exc)
    for link in chain:
        if isinstance(link, sqlite3.Error):
            return _by_sqlite(link)
    if any(_is_disconnect(link) for link in chain):
        return Verdict.OUTAGE
    if any(_never_reached_the_database(link) for link in chain):
        return Verdict.REFUSED
    return Verdict.UNKNOWN


def _by_sqlstate(code: str) -> Verdict:
    if code[:2] in _REFUSED_CLASSES:
        return Verdict.REFUSED
    if code[:2] in _OUTAGE_CLASSES:
        return Verdict.OUTAGE
    return Verdict.UNKNOWN


def _by_sqlite(error: sqlite3.Error) -> Verdict:
    name = getattr(error, "sqlite_errorname", None) or ""
    if isinstance(error, sqlite3.IntegrityError | sqlite3.DataError) or name.startswith(
        _SQLITE_REFUSED
    ):
        return Verdict.REFUSED
    if name.startswith(_SQLITE_OUTAGE) or isinstance(error, sqlite3.OperationalError):
        return Verdict.OUTAGE
    return Verdict.UNKNOWN


def _is_disconnect(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OSError | TimeoutError):
        return True
    # asyncpg's InterfaceError is a closed or busy connection, except its DataError subclass
    # (a value it could not encode), which is also a ValueError.
    kind = type(error)
    return (
        kind.__module__.startswith("asyncpg")
        and any(base.__name__ == "InterfaceError" for base in kind.__mro__)
        and not isinstance(error, ValueError)
    )


def _never_reached_the_database(error: BaseException) -> bool:
    if isinstance(error, IntegrityError | DataError | ValueError | TypeError | OverflowError):
        return True
    return isinstance(error, StatementError) and not isinstance(error, DBAPIError)
