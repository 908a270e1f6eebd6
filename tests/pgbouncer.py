"""A PgBouncer in transaction pooling mode in front of the test cluster, run by the tests themselves.

Debian's `pgbouncer` package (installed with apt-get when missing and we are
root, as ./dev does for Chromium) listens on a free loopback port with its own
ini file in a temporary folder and forwards every database name to the server
of `TEST_DATABASE_URL` (or of the URL it is given). Its reset query is the one the app's recipe needs
(backend/db/pooling.py). A PgBouncer that cannot be started fails the test, with
the reason; it is never skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.databases import postgres_server_url
from tests.serving import HOST, free_port

PGBOUNCER = "/usr/sbin/pgbouncer"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "custodian-pgbouncer-install.lock"
RUN_AS = "postgres"  # PgBouncer refuses to run as root; Debian's PostgreSQL brings this user


class PgBouncer:
    """One PgBouncer process; `stop` and `start` again keep its port, as a restart would."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def url_for(self, direct_url: str) -> str:
        """`direct_url`'s database, reached through this PgBouncer."""
        return make_url(direct_url).set(host=HOST, port=self.port).render_as_string(hide_password=False)

    def start(self) -> None:
        command = [
            PGBOUNCER,
            *(["-u", RUN_AS] if os.geteuid() == 0 else []),
            str(self.folder / "pgbouncer.ini"),
        ]
        with (self.folder / "output.log").open("a") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start: {self.log()}")
            with socket.socket() as sock:
                if sock.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """SIGTERM: PgBouncer drops every client and server connection at once."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-2000:]
            for path in (self.folder / "output.log", self.folder / "pgbouncer.log")
            if path.exists()
        )


def _ini(folder: Path, port: int, server_url: str) -> str:
    server = make_url(server_url)
    return f"""\
[databases]
* = host={server.host or HOST} port={server.port or 5432}

[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
server_reset_query = DISCARD ALL
server_reset_query_always = 1
default_pool_size = 10
max_client_conn = 500
query_wait_timeout = 5
server_connect_timeout = 5
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
"""


def _installed() -> bool:
    if Path(PGBOUNCER).exists():
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    # Both xdist workers may get here at once; dpkg takes one installer at a time.
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not Path(PGBOUNCER).exists():
            environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for step in (["update", "-qq"], ["install", "-y", "-qq", "pgbouncer"]):
                subprocess.run(["apt-get", *step], capture_output=True, env=environment, check=False)
    return Path(PGBOUNCER).exists()


def _cannot(reason: str) -> None:
    # Never a silent skip, in CI or not: these tests install and start what they need themselves.
    pytest.fail(f"PgBouncer is needed for this test: {reason}")


@contextmanager
def running_pgbouncer(server_url: str | None = None) -> Iterator[PgBouncer]:
    """Install if needed, start, yield, and always stop a PgBouncer; its folder is removed at the end.

    It forwards to the server of `server_url` (default: the test cluster's); bench/load.py puts it
    in front of the primary of a `tests.replica.replicated_pair`.
    """
    if not _installed():
        _cannot(f"{PGBOUNCER} is missing and cannot be installed here (needs root and apt-get)")
    server_url = server_url or postgres_server_url()
    folder = Path(tempfile.mkdtemp(prefix="custodian-pgbouncer-"))
    user = make_url(server_url).username or RUN_AS
    try:
        port = free_port()
        (folder / "pgbouncer.ini").write_text(_ini(folder, port, server_url))
        (folder / "userlist.txt").write_text(f'"{user}" ""\n')
        if os.geteuid() == 0:
            shutil.chown(folder, RUN_AS)
            for path in folder.iterdir():
                shutil.chown(path, RUN_AS)
        bouncer = PgBouncer(folder, port)
        try:
            bouncer.start()
        except RuntimeError as exc:
            _cannot(str(exc))
        try:
            yield bouncer
        finally:
            bouncer.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
