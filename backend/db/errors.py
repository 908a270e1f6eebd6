"""Telling 'the database is unavailable' apart from other database errors."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from backend.config import Settings
from backend.errors import DatabaseUnavailable

# SQLSTATEs of a server that cannot serve this connection: class 08 (connection exceptions, e.g.
# asyncpg's "connection was closed in the middle of operation" when PgBouncer dies), and the
# server shutting down or starting up (57P01-57P03).
UNAVAILABLE_SQLSTATE_CLASS = "08"
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_database_unavailable(error: BaseException) -> bool:
    """True for errors that mean the database cannot serve us right now.

    Covers a refused or timed-out connection (asyncpg raises plain `OSError`
    and `TimeoutError`, which SQLAlchemy does not wrap), an exhausted pool, a
    connection dropped mid-query (asyncpg reports some of those as a plain
    DBAPIError carrying a connection-class SQLSTATE), and operational errors
    such as a server shutting down or SQLite's "database is locked".
    """
    if isinstance(error, (OSError, sa_exc.TimeoutError)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        cause = error.orig.__cause__ if error.orig is not None else None
        return isinstance(cause, OSError) or _unavailable_sqlstate(cause)
    return False


def _unavailable_sqlstate(error: BaseException | None) -> bool:
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith(UNAVAILABLE_SQLSTATE_CLASS) or sqlstate in UNAVAILABLE_SQLSTATES
    )


def unavailable(settings: Settings, error: BaseException) -> DatabaseUnavailable:
    """A `DatabaseUnavailable` naming the database (password hidden) and the cause."""
    reason = short_reason(error)
    if "database is locked" in reason:
        # SQLite answered: another writer held the lock past the busy timeout. Reachable, but busy.
        return DatabaseUnavailable(
            f"The database at {settings.safe_database_url} is busy: another writer held it for longer than "
            f"SQLITE_BUSY_TIMEOUT_MS ({settings.sqlite_busy_timeout_ms} ms). Try again."
        )
    return DatabaseUnavailable(f"Cannot reach the database at {settings.safe_database_url}: {reason}")


def short_reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, sa_exc.TimeoutError):
        return "no free connection in the pool"
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        error = error.orig
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or type(error).__name__
