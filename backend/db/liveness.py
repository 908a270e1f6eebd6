"""A pooled PostgreSQL connection is checked at checkout with one round trip instead of three.

SQLAlchemy's `pool_pre_ping` on asyncpg wraps its empty statement in BEGIN ... ROLLBACK so that it
also works behind PgBouncer in transaction mode (sqlalchemy#10226): three round trips at every
checkout, two checkouts per admin page (the session lookup, then the page). Our pooled engines
never sit behind PgBouncer (that engine has no pool of its own, backend/db/pooling.py), so one
statement alone is enough. A connection that fails it is discarded and the pool hands out
another: raising `DisconnectionError` in a checkout handler is SQLAlchemy's documented
pessimistic-disconnect recipe, retried by the pool itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

# Set on a connection made for this very checkout: it has just answered the handshake.
_JUST_CONNECTED = "custodian_just_connected"


def check_connections_at_checkout(engine: AsyncEngine) -> None:
    """Ping every pooled connection of `engine` as it leaves the pool (use instead of `pool_pre_ping`)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _mark_new(_dbapi_connection: Any, record: Any) -> None:
        record.info[_JUST_CONNECTED] = True

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.pop(_JUST_CONNECTED, False):
            return
        try:
            # Not ";": asyncpg's execute() fails on the empty statement's answer (it has no command tag).
            dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
        except Exception as exc:  # closed, reset or timed out: whatever it was, this connection is unusable
            raise DisconnectionError("the pooled connection did not answer; the pool replaces it") from exc
