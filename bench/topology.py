"""The production shape `./dev load --topology full` runs against, and the replica's outage mid-run.

A primary and its streaming standby of their own (tests/replica.py
`replicated_pair`, on free loopback ports, thrown away at the end), Debian's
PgBouncer in transaction mode in front of the primary (tests/pgbouncer.py
`running_pgbouncer`), and `manage.py runserver --workers 2` configured as
README "Running in production" says. The helpers are the tests' own, so there
is one way to start each; they report a failure to start through pytest's
`fail`, which `./dev load` turns into one line.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.pgbouncer import PgBouncer, running_pgbouncer
from tests.replica import DATABASE, ReplicatedPair, replicated_pair
from tests.serving import ServerDidNotStart, running_server

REPO = Path(__file__).resolve().parent.parent
WORKERS = 2
REPLICA_MAX_LAG_SECONDS = 5
REPLICA_CHECK_INTERVAL_SECONDS = 5
READ_PRIMARY_SECONDS = REPLICA_MAX_LAG_SECONDS + REPLICA_CHECK_INTERVAL_SECONDS
BOOTED = "SELECT pg_postmaster_start_time()"
TRANSACTIONS = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"


@dataclass(frozen=True)
class Stack:
    pair: ReplicatedPair
    bouncer: PgBouncer

    @property
    def direct_url(self) -> str:
        """The primary's database, past PgBouncer, in asyncpg's form."""
        return self.pair.primary_url.replace("postgresql+asyncpg://", "postgresql://")

    @property
    def replica_url(self) -> str:
        return self.pair.replica_url.replace("postgresql+asyncpg://", "postgresql://")

    def app_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with the settings of README "Running in production" for this stack."""
        return {
            **env,
            "DATABASE_URL": self.bouncer.url_for(self.pair.primary_url),
            "DATABASE_POOLER": "pgbouncer",
            "DATABASE_DIRECT_URL": self.pair.primary_url,
            "DATABASE_REPLICA_URLS": self.pair.replica_url,
            "METRICS_ENABLED": "true",
            # The defaults, spelled out: a browser that wrote reads the primary for their sum.
            "REPLICA_MAX_LAG_SECONDS": str(REPLICA_MAX_LAG_SECONDS),
            "REPLICA_CHECK_INTERVAL_SECONDS": str(REPLICA_CHECK_INTERVAL_SECONDS),
            "LOG_LEVEL": "WARNING",
        }


@contextmanager
def production_stack() -> Iterator[Stack]:
    """Start the pair and PgBouncer in front of its primary; always stop both."""
    with replicated_pair() as pair, running_pgbouncer(pair.primary_url) as bouncer:
        yield Stack(pair, bouncer)


@contextmanager
def two_workers(env: Mapping[str, str]) -> Iterator[tuple[str, Path]]:
    """`manage.py runserver --workers 2` on a free port until the block ends: its base URL and its log."""

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "manage.py", "runserver", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(WORKERS)),
        ]

    with tempfile.TemporaryDirectory(prefix="custodian-load-") as folder:
        log = Path(folder) / "server.log"
        try:
            with running_server(command, cwd=REPO, env=env, log=log) as server:
                yield server.url, log
        except ServerDidNotStart as exc:
            raise SystemExit(str(exc)) from exc


class ReplicaOutage:
    """Stops the standby a third into the run and starts it again at two thirds.

    `phase()` says where the run is; `transactions` holds, per phase, the
    transactions each server ran in the database (its pg_stat_database count,
    which a backend reports about once a second: the split at each boundary
    is good to a second or so). The standby's counters start again at zero
    when it restarts, so its count is taken on each side of the outage.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.current = "before"
        self.transactions: dict[str, dict[str, int | None]] = {"standby": {}, "primary": {}}
        self.timeline: list[str] = []
        self.problems: list[str] = []

    def phase(self) -> str:
        return self.current

    async def drive(self, seconds: float) -> None:
        started = time.perf_counter()
        booted = await self._value(self.stack.replica_url, BOOTED)
        primary, standby = await self._count(self.stack.direct_url), await self._count(self.stack.replica_url)
        await asyncio.sleep(seconds / 3)
        primary = await self._record("primary", "before", self.stack.direct_url, primary)
        await self._record("standby", "before", self.stack.replica_url, standby)
        self.current = "stopped"
        await self._act("stopped", self.stack.pair.replica.stop, started)
        await asyncio.sleep(max(0.0, started + 2 * seconds / 3 - time.perf_counter()))
        await self._act("started again", self.stack.pair.replica.start, started)
        primary = await self._record("primary", "stopped", self.stack.direct_url, primary)
        self.transactions["standby"]["stopped"] = None  # it was down: nothing to count
        self.current = "after"
        standby = await self._count(self.stack.replica_url)
        await asyncio.sleep(max(0.0, started + seconds - time.perf_counter()))
        await self._record("primary", "after", self.stack.direct_url, primary)
        await self._record("standby", "after", self.stack.replica_url, standby)
        if await self._value(self.stack.replica_url, BOOTED) == booted:
            self.problems.append("the standby was not restarted: its postmaster start time did not change")

    async def _act(self, what: str, action: Callable[[], None], started: float) -> None:
        began = time.perf_counter()
        await asyncio.to_thread(action)
        self.timeline.append(
            f"standby {what} at {began - started:.1f} s (pg_ctl took {time.perf_counter() - began:.1f} s)"
        )

    async def _record(self, server: str, phase: str, url: str, since: int) -> int:
        now = await self._count(url)
        self.transactions[server][phase] = now - since
        return now

    @classmethod
    async def _count(cls, url: str) -> int:
        count = await cls._value(url, TRANSACTIONS, DATABASE)
        if not isinstance(count, int):
            raise RuntimeError(f"pg_stat_database has no row for {DATABASE!r} at {url}")
        return count

    @staticmethod
    async def _value(url: str, query: str, *args: object) -> object:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(query, *args)
        finally:
            await connection.close()
