"""What stops the daemon (or a CLI client) at start-up is one OtusError naming the path and
the reason, which the CLI prints as one ``otus:`` line: never a traceback."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from otus._control.client import call
from otus._control.jsonrpc import Dispatcher
from otus._control.server import ControlServer
from otus._daemon.pidfile import PidFile
from otus._daemon.store import TaskStore
from otus.errors import OtusError

TOO_LONG = "/run/" + "a" * 120 + ".sock"  # AF_UNIX paths hold at most 107 bytes
NO_DIR = "/proc/otus-no-such-dir/x"  # /proc refuses new directories


def test_a_pid_file_that_cannot_be_written() -> None:
    with pytest.raises(OtusError, match=re.escape(f"cannot write the pid file {NO_DIR}.pid: ")):
        PidFile(NO_DIR + ".pid").acquire()


def test_a_data_dir_that_cannot_be_made() -> None:
    with pytest.raises(OtusError, match=re.escape(f"cannot use the data directory {NO_DIR}: ")):
        TaskStore(NO_DIR)


@pytest.mark.parametrize(
    ("path", "reason"), [(TOO_LONG, "AF_UNIX path too long"), (NO_DIR + ".sock", "")]
)
def test_a_socket_that_cannot_be_made(path: str, reason: str) -> None:
    server = ControlServer(path, Dispatcher({}))
    with pytest.raises(
        OtusError, match=re.escape(f"cannot listen on the control socket {path}: {reason}")
    ):
        asyncio.run(server.start())


def test_an_unknown_socket_group() -> None:
    with pytest.raises(
        OtusError, match=re.escape("otus.control.group: no group 'no-such-group-x'")
    ):
        ControlServer("/tmp/x.sock", Dispatcher({}), group="no-such-group-x")


def test_a_client_on_a_socket_path_too_long() -> None:
    with pytest.raises(
        OtusError, match=re.escape(f"cannot connect to {TOO_LONG}: AF_UNIX path too long")
    ):
        call(TOO_LONG, "daemon_status")


def test_a_client_on_a_directory(tmp_path: Path) -> None:
    with pytest.raises(OtusError, match=re.escape(f"{tmp_path}")):
        call(str(tmp_path), "daemon_status")
