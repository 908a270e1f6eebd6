"""Read replicas: which one a read-only unit of work reads from, and a session that follows it.

`DATABASE_REPLICA_URLS` names PostgreSQL streaming standbys. A replica serves
reads only while it is reachable and no further behind the primary than
`REPLICA_MAX_LAG_SECONDS`; its health is checked at most every
`REPLICA_CHECK_INTERVAL_SECONDS`, not on every request. Lag is the age of the
last replayed transaction, except that a standby still streaming that has
replayed everything it received is 0 behind: on an idle primary the replay
timestamp grows old while nothing is missing.

Which reads may go to a replica is decided by the unit of work (backend/db/uow.py):
a `ReplicaSession` reads from the replica it is given and from the primary
once that is taken back. A replica that fails a read is reported down and
the read runs again on the primary, so a standby that stops costs no error.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Result
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState, Session

from backend.config import Settings
from backend.db.errors import is_database_unavailable, short_reason

logger = logging.getLogger(__name__)

# A failed read is tried again on the primary whatever the error: a statement
# that is wrong fails there too, with the error the caller would have had anyway.
READ_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError)
# SQLSTATE of a standby cancelling a query whose rows replay must remove ("conflict with recovery").
RECOVERY_CONFLICT = "40001"
SKIPPED = "its reads go to the primary"

LAG_QUERY = text(
    """
    SELECT pg_is_in_recovery(),
           CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                     AND EXISTS (SELECT FROM pg_stat_wal_receiver)
                THEN 0
                ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
           END
    """
)


@dataclass(frozen=True)
class ReplicaStatus:
    """What the last check (or failed read) found: whether the replica serves reads, and why not."""

    name: str
    url: str  # password hidden
    ok: bool
    lag_seconds: float | None
    detail: str

    def as_dict(self) -> dict[str, object]:
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        return {"url": self.url, "ok": self.ok, "lag_seconds": lag, "detail": self.detail}


class Replica:
    """One standby: its engine and its last known status."""

    def __init__(self, name: str, url: URL, engine: AsyncEngine) -> None:
        self.name = name
        self.url = url.render_as_string(hide_password=True)
        self.engine = engine
        self.status: ReplicaStatus | None = None
        self.checked_at: float | None = None  # time.monotonic() of the last check; None: never checked

    def due(self, now: float, interval: float) -> bool:
        # Never "long ago" for an unchecked replica: time.monotonic() counts from boot, and a
        # container or machine up for less than the interval would otherwise never check it.
        return self.checked_at is None or now - self.checked_at >= interval

    def failed(self, error: BaseException) -> None:
        """A read failed here: when the replica is at fault, skip it until its next check says otherwise."""
        if not is_database_unavailable(error) and _sqlstate(error) != RECOVERY_CONFLICT:
            return
        self._record(False, None, f"failed a read ({short_reason(error)}); {SKIPPED}")

    async def check(self, settings: Settings) -> ReplicaStatus:
        limit = settings.replica_max_lag_seconds
        try:
            async with asyncio.timeout(settings.db_connect_timeout + 1):
                async with self.engine.connect() as connection:
                    in_recovery, lag = (await connection.execute(LAG_QUERY)).one()
        except READ_ERRORS as exc:
            return self._record(False, None, f"is unavailable ({short_reason(exc)}); {SKIPPED}")
        if not in_recovery:
            return self._record(False, None, f"is not a standby (pg_is_in_recovery() is false); {SKIPPED}")
        if lag is None:
            return self._record(False, None, f"has replayed nothing yet; {SKIPPED}")
        lag = max(0.0, float(lag))
        if lag > limit:
            detail = f"{lag:.1f} s behind, more than REPLICA_MAX_LAG_SECONDS ({limit:g}); {SKIPPED}"
            return self._record(False, lag, detail)
        return self._record(True, lag, f"{lag:.1f} s behind")

    def _record(self, ok: bool, lag: float | None, detail: str) -> ReplicaStatus:
        was_ok = self.status is None or self.status.ok
        self.status = ReplicaStatus(self.name, self.url, ok, lag, f"{self.url} {detail}")
        self.checked_at = time.monotonic()
        if was_ok and not ok:
            logger.warning("Read replica %s %s", self.url, detail)
        elif ok and not was_ok:
            logger.info("Read replica %s serves reads again (%s)", self.url, detail)
        return self.status


def _sqlstate(error: BaseException) -> str | None:
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else None
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


class Replicas:
    """The configured replicas, their cached health, and a healthy one per request, in turn."""

    def __init__(self, settings: Settings, replicas: Sequence[Replica]) -> None:
        self.settings = settings
        self.all = tuple(replicas)
        self._turn = itertools.count()
        self._checking = asyncio.Lock()

    def __bool__(self) -> bool:
        return bool(self.all)

    async def choose(self) -> Replica | None:
        """A healthy replica (round robin), or None: then the primary serves the reads."""
        if not self.all:
            return None
        await self._refresh_when_due()
        healthy = [replica for replica in self.all if replica.status is not None and replica.status.ok]
        if not healthy:
            return None
        return healthy[next(self._turn) % len(healthy)]

    async def check(self) -> list[ReplicaStatus]:
        """Check every replica now (for /ready and `manage.py check`), and keep what was found."""
        return list(await asyncio.gather(*(replica.check(self.settings) for replica in self.all)))

    async def _refresh_when_due(self) -> None:
        interval = self.settings.replica_check_interval_seconds
        now = time.monotonic()
        due = [replica for replica in self.all if replica.due(now, interval)]
        if not due:
            return
        checked_before = all(replica.status is not None for replica in self.all)
        if self._checking.locked() and checked_before:
            return  # another request is checking: this one goes by the last statuses
        async with self._checking:
            now = time.monotonic()
            due = [replica for replica in self.all if replica.due(now, interval)]
            await asyncio.gather(*(replica.check(self.settings) for replica in due))

    async def dispose(self) -> None:
        for replica in self.all:
            await replica.engine.dispose()


class ReplicaSession(Session):
    """A session that reads from a replica while it has one (`read_from`), else from the primary.

    Every statement and `connection()` take their connection through
    `get_bind`, so ORM queries, SQLAdmin's loaders and Core reads on the
    session's connection (exports) all follow it. A replica that fails a read
    is reported and dropped for the rest of the session; the read runs again
    on the primary. A stream already being read cannot be run again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replica: Replica | None = None
        # Registered first, so the retry wraps every other listener of the statement.
        event.listen(self, "do_orm_execute", self._read_again_on_primary)

    def read_from(self, replica: Replica | None) -> None:
        """Read from `replica` from the next statement on; None: the primary."""
        self.replica = replica

    def get_bind(self, mapper: Any = None, *, clause: Any = None, bind: Any = None, **kw: Any) -> Any:
        if bind is None and self.replica is not None:
            return self.replica.engine.sync_engine
        return super().get_bind(mapper, clause=clause, bind=bind, **kw)

    def connection(self, *args: Any, **kwargs: Any) -> Connection:
        replica = self.replica
        if replica is None:
            return super().connection(*args, **kwargs)
        try:
            return super().connection(*args, **kwargs)
        except READ_ERRORS as exc:
            self._give_up(replica, exc)
            return super().connection(*args, **kwargs)

    def _read_again_on_primary(self, state: ORMExecuteState) -> Result[Any] | None:
        replica = self.replica
        if replica is None:
            return None
        try:
            return state.invoke_statement()
        except READ_ERRORS as exc:
            self._give_up(replica, exc)
            return state.invoke_statement()

    def _give_up(self, replica: Replica, error: BaseException) -> None:
        logger.info(
            "A read on replica %s failed (%s); it runs on the primary", replica.url, short_reason(error)
        )
        self.replica = None
        replica.failed(error)
