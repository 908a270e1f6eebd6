"""Start the admin (or any ASGI server) in a subprocess and wait until it answers.

Shared by the browser journeys, the "Adding a model" walkthrough and the benchmark
(`bench/run.py` puts the repository root on `sys.path` to import it). It lives with
the tests because it is test infrastructure: bench is a consumer of it, and the suite
must never depend on bench's modules (they import asyncpg and open databases).
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
LOG_TAIL = 4000  # characters of the server's output shown when it fails to start
PORT_ATTEMPTS = 3  # a port picked free may be taken before the server binds it


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not answer its health check in time; the message carries its output."""


@dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    pid: int
    log: Path


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


@contextmanager
def running_server(
    command: Callable[[int], Sequence[str]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    health_path: str = "/health",
    start_timeout: float = 120.0,
    stop_timeout: float = 20.0,
    log: Path | None = None,
) -> Iterator[RunningServer]:
    """Run `command(port)` until the block ends; yield once GET `health_path` answers 200.

    The server's stdout and stderr go to `log` (a temporary file by default), never to a
    pipe that could fill and block it. A server that exits before answering (a port taken
    meanwhile, an import error, bad settings) raises `ServerDidNotStart` with the end of its
    output; a port taken between choosing and binding is retried on another port. The
    process is always stopped: terminated, then killed after `stop_timeout` seconds.
    """
    if log is None:
        handle, name = tempfile.mkstemp(prefix="custodian-server-", suffix=".log")
        os.close(handle)
        log = Path(name)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        with log.open("w") as output:
            process = subprocess.Popen(
                list(command(port)), cwd=cwd, env=dict(env), stdout=output, stderr=subprocess.STDOUT
            )
        try:
            problem = _wait_until_healthy(process, port, health_path, timeout=start_timeout)
            if problem is None:
                yield RunningServer(url=f"http://{HOST}:{port}", port=port, pid=process.pid, log=log)
                return
            output_text = log.read_text(errors="replace")
            if "address already in use" in output_text.lower() and attempt < PORT_ATTEMPTS:
                continue
            raise ServerDidNotStart(
                f"{' '.join(command(port))} {problem}; its output ({log}) ends with:\n"
                + output_text[-LOG_TAIL:]
            )
        finally:
            _stop(process, stop_timeout)


def _wait_until_healthy(
    process: subprocess.Popen[bytes], port: int, path: str, *, timeout: float
) -> str | None:
    """None once `path` answers 200 from this process; else why it did not."""
    url = f"http://{HOST}:{port}{path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode} before answering"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                # Another process may hold the port: ours must still be running.
                return None if process.poll() is None else "exited; the port answers for another process"
        except httpx.HTTPError:
            time.sleep(0.1)
    if _listening(port):
        return f"listens but {url} did not answer 200 within {timeout:.0f} s"
    return f"did not answer {url} within {timeout:.0f} s"


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
