"""The shared "start the server and wait" helper (tests/serving.py), with tiny stand-in servers."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from tests.serving import HOST, ServerDidNotStart, running_server

ENV = dict(os.environ)


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", HOST]


def _gone(pid: int) -> bool:
    # A child stays in /proc as a zombie until it is waited for: gone means stopped and reaped.
    return not Path(f"/proc/{pid}").exists()


def test_yields_once_the_server_answers_and_always_stops_it(tmp_path: Path) -> None:
    with running_server(_http_server, cwd=tmp_path, env=ENV, health_path="/") as server:
        assert server.url == f"http://{HOST}:{server.port}"
        pid = server.pid
        assert not _gone(pid)
    assert _gone(pid)


def test_a_server_that_dies_shows_its_output(tmp_path: Path) -> None:
    def dies(_port: int) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.stderr.write('settings are broken\\n'); sys.exit(3)"]

    with (
        pytest.raises(ServerDidNotStart) as failed,
        running_server(dies, cwd=tmp_path, env=ENV, log=tmp_path / "server.log"),
    ):
        pytest.fail("a dead server was yielded")
    assert "exited with code 3" in str(failed.value) and "settings are broken" in str(failed.value)


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    def hangs(_port: int) -> list[str]:
        return ["/bin/sh", "-c", "echo $$; exec sleep 120"]  # its pid first; a shell starts at once

    log = tmp_path / "server.log"
    with (
        pytest.raises(ServerDidNotStart, match="did not answer"),
        running_server(hangs, cwd=tmp_path, env=ENV, start_timeout=3, stop_timeout=5, log=log),
    ):
        pytest.fail("a silent server was yielded")
    assert _gone(int(log.read_text().split()[0]))


def test_a_port_taken_before_the_server_binds_it_is_retried_on_another(tmp_path: Path) -> None:
    taken: list[socket.socket] = []

    def first_port_is_taken(port: int) -> list[str]:
        if not taken:  # someone else grabs the port between choosing and binding
            sock = socket.socket()
            sock.bind((HOST, port))
            sock.listen()
            taken.append(sock)
        return _http_server(port)

    try:
        with running_server(first_port_is_taken, cwd=tmp_path, env=ENV, health_path="/") as server:
            assert server.port != taken[0].getsockname()[1]
    finally:
        taken[0].close()
