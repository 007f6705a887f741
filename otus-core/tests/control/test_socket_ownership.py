"""The control socket is never left where another local user could replace it, and the CLI
talks only to a daemon running as root or as the caller (``SO_PEERCRED``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from otus._control.client import call
from otus._control.jsonrpc import Dispatcher
from otus._control.server import ControlServer, unsafe_directory
from otus.errors import ControlError, OtusError
from otus.testing import need_root

NOBODY = 65534


def test_a_private_directory_and_a_sticky_one_are_safe(tmp_path: Path) -> None:
    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    assert unsafe_directory(str(private)) is None
    assert unsafe_directory("/tmp") is None  # world-writable but sticky: nobody renames our files


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone could rename the socket away and put theirs
    assert unsafe_directory(str(shared)) == f"{shared} may be written by other users (mode 777)"
    server = ControlServer(str(shared / "otus.sock"), Dispatcher({}))
    with pytest.raises(OtusError, match="another user could replace the socket"):
        asyncio.run(server.start())
    assert not (shared / "otus.sock").exists()


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    need_root()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    # e.g. /tmp/otus-1000 made in advance by somebody else: the daemon does not listen there
    server = ControlServer(str(theirs / "otus.sock"), Dispatcher({}))
    with pytest.raises(OtusError, match=f"{theirs} belongs to uid {NOBODY}"):
        asyncio.run(server.start())


def _impostor(path: str, report: int) -> None:
    """In a forked child: listen at ``path`` as another user, say how many bytes came."""
    try:
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        os.write(report, b"ready\n")
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(2)
        try:
            data = conn.recv(65536)
        except TimeoutError:
            data = b""
        os.write(report, b"got %d bytes\n" % len(data))
    finally:
        os._exit(0)


def test_the_client_sends_nothing_to_a_socket_another_user_serves() -> None:
    need_root()
    base = Path(tempfile.mkdtemp(prefix="otus-sock-"))  # pytest's own tree is root-only
    base.chmod(0o755)  # let the other user reach its directory
    spot = base / "spot"
    spot.mkdir(mode=0o755)
    os.chown(spot, NOBODY, NOBODY)
    try:
        _talk_to_impostor(str(spot / "otus.sock"))
    finally:
        shutil.rmtree(base)


def _talk_to_impostor(path: str) -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _impostor(path, write_end)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        try:
            assert report.readline() == "ready\n"
            with pytest.raises(ControlError, match=f"served by uid {NOBODY}, neither root nor you"):
                call(path, "daemon_status", timeout=5)
            assert report.readline() == "got 0 bytes\n"  # the request never left the client
        finally:
            os.waitpid(pid, 0)
