"""A PostgreSQL primary and its streaming replica, started by the tests themselves.

Both are clusters of their own, on free loopback ports, in a temporary folder,
run by the machine's PostgreSQL programs (the major version of the server of
`TEST_DATABASE_URL`): `initdb` makes the primary, `pg_basebackup -R -X stream`
copies it into a hot standby. Not a copy of the shared test cluster: a standby
opens for reads only once the transactions its copy started under have ended,
and the rest of the suite keeps long ones open there (a test is one transaction
with many savepoints), so it took a minute or more to open. Nothing of the
shared cluster is touched.

A pair that cannot be started fails the test, with the reason; it is never
skipped. Both clusters are always stopped and removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from tests.databases import postgres_server_url
from tests.serving import HOST, free_port

RUN_AS = "postgres"  # postgres refuses to run as root; Debian's package brings this user
USER = "postgres"
DATABASE = "custodian"
# Small and fast: the data are thrown away at the end.
CONFIGURATION = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{sockets}'
shared_buffers = 16MB
max_connections = 60
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class ReplicaUnavailable(RuntimeError):
    pass


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], *, timeout: float = 60) -> str:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ReplicaUnavailable(
            f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return done.stdout


def psql(url: URL, sql: str) -> str:
    """Run `sql` on the server `url` names (in its database); the unaligned output."""
    command = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"]
    command += ["-h", url.host or HOST, "-p", str(url.port), "-U", url.username or USER]
    command += ["-d", url.database or "postgres", "-c", sql]
    return _run(command, timeout=30).strip()


class Cluster:
    """One postmaster over `data`; `stop` and `start` again keep its port and data, as a restart would."""

    def __init__(self, data: Path, port: int, bin_dir: Path) -> None:
        self.data = data
        self.port = port
        self.bin_dir = bin_dir

    def url(self, database: str = DATABASE) -> URL:
        return URL.create("postgresql+asyncpg", username=USER, host=HOST, port=self.port, database=database)

    def sql(self, statement: str, *, database: str = "postgres") -> str:
        return psql(self.url(database), statement)

    def start(self) -> None:
        log = self.data.parent / f"{self.data.name}.log"
        _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "30", "start"])

    def stop(self) -> None:
        """A fast shutdown: open connections are dropped at once, as when a server goes away."""
        if (self.data / "postmaster.pid").exists():
            _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def log(self) -> str:
        path = self.data.parent / f"{self.data.name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class ReplicatedPair:
    """A primary with database `custodian` and a hot standby that streams from it."""

    def __init__(self, primary: Cluster, replica: Cluster) -> None:
        self.primary = primary
        self.replica = replica

    @property
    def primary_url(self) -> str:
        return self.primary.url().render_as_string(hide_password=False)

    @property
    def replica_url(self) -> str:
        return self.replica.url().render_as_string(hide_password=False)

    def pause_replay(self) -> None:
        self.replica.sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.replica.sql("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary had written when this was called."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        while self.replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay up to {target} within {timeout:.0f} s")
            time.sleep(0.05)


def _bin_dir() -> Path:
    server = make_url(postgres_server_url()).set(database="postgres")
    major = int(psql(server, "SHOW server_version_num")) // 10000
    bin_dir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (bin_dir / "pg_basebackup").exists():
        raise ReplicaUnavailable(f"PostgreSQL {major}'s programs are not in {bin_dir}")
    return bin_dir


def _configure(data: Path, *, port: int, sockets: Path) -> None:
    with (data / "postgresql.conf").open("a") as conf:  # later lines win: a standby's copy is overridden
        conf.write(CONFIGURATION.format(host=HOST, port=port, sockets=sockets))


def _start_pair(folder: Path, bin_dir: Path, started: list[Cluster]) -> ReplicatedPair:
    """Make and start both clusters; each is added to `started` before it starts, to be stopped later."""
    primary = Cluster(folder / "primary", free_port(), bin_dir)
    # initdb's pg_hba.conf trusts local and loopback connections, replication ones included.
    _run([str(bin_dir / "initdb"), "-D", str(primary.data), "-U", USER, "-A", "trust", "--no-sync"])
    _configure(primary.data, port=primary.port, sockets=folder)
    started.append(primary)
    primary.start()
    primary.sql(f"CREATE DATABASE {DATABASE}")
    replica = Cluster(folder / "replica", free_port(), bin_dir)
    _run(
        [
            str(bin_dir / "pg_basebackup"),
            *("-h", HOST, "-p", str(primary.port), "-U", USER, "-D", str(replica.data)),
            *("-R", "-X", "stream", "--checkpoint=fast", "--no-sync"),
        ]
    )
    _configure(replica.data, port=replica.port, sockets=folder)
    started.append(replica)
    replica.start()
    return ReplicatedPair(primary, replica)


def _cannot(reason: str) -> None:
    # Never a silent skip, in CI or not: these tests install and start what they need themselves.
    pytest.fail(f"A streaming replica is needed for this test: {reason}")


@contextmanager
def replicated_pair() -> Iterator[ReplicatedPair]:
    """Start a primary and its streaming replica, yield them; always stop and remove both."""
    folder = Path(tempfile.mkdtemp(prefix="custodian-replica-"))
    if os.geteuid() == 0:
        shutil.chown(folder, RUN_AS)
    started: list[Cluster] = []
    try:
        try:
            pair = _start_pair(folder, _bin_dir(), started)
        except (ReplicaUnavailable, OSError, subprocess.TimeoutExpired) as exc:
            logs = "\n".join(cluster.log() for cluster in started)
            _cannot(f"{exc}\n{logs}".strip())
        yield pair
    finally:
        for cluster in reversed(started):
            command = [
                str(cluster.bin_dir / "pg_ctl"),
                "-D",
                str(cluster.data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]
            if (cluster.data / "postmaster.pid").exists():
                subprocess.run(_as_postgres(command), capture_output=True, check=False, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
