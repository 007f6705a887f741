"""The control socket is never used where a user other than root and the caller could have put
it or could swap it: the daemon does not listen there, and the CLI sends nothing there."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from otus._control.client import call
from otus._control.jsonrpc import Dispatcher
from otus._control.server import ControlServer, unsafe_directory
from otus.errors import ControlError, OtusError
from otus.testing import need_root

NOBODY = 65534


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A /tmp-like directory: anyone may create entries (sticky, mode 1777)."""
    base = Path(tempfile.mkdtemp(prefix="otus-sock-"))
    base.chmod(0o1777)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def test_a_private_directory_is_safe(tmp_path: Path) -> None:
    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    assert unsafe_directory(str(private)) is None


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could rename the socket away and put theirs
    assert unsafe_directory(str(shared)) == f"{shared} may be written by other users (mode 777)"
    assert unsafe_directory("/tmp") == "/tmp may be written by other users (mode 1777)"
    with pytest.raises(ControlError, match="may be written by other users"):
        call(str(shared / "otus.sock"), "daemon_status", timeout=5)
    server = ControlServer(f"/tmp/otus-test-{os.getpid()}.sock", Dispatcher({}))
    with pytest.raises(OtusError, match="so another user could replace the socket"):
        asyncio.run(server.start())  # sticky /tmp itself: somebody else's file could be there


def test_the_daemons_own_open_directory_is_closed_to_others(tmp_path: Path) -> None:
    # a Kubernetes emptyDir mounted at /run/otus is 0777 and belongs to the container's root
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o777)
    server = ControlServer(str(run / "otus.sock"), Dispatcher({}))

    async def start_and_close() -> None:
        await server.start()
        await server.close()

    asyncio.run(start_and_close())
    assert run.stat().st_mode & 0o777 == 0o755
    assert unsafe_directory(str(run)) is None


def test_a_directory_another_user_made_in_tmp_is_refused_by_daemon_and_cli(
    shared_tmp: Path,
) -> None:
    need_root()
    # e.g. /tmp/otus-1000 made in advance by somebody else, where a non-root daemon without
    # XDG_RUNTIME_DIR puts its socket
    theirs = shared_tmp / "otus-1000"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    why = f"{theirs} belongs to uid {NOBODY} (in {shared_tmp}, where anyone may create entries)"
    assert unsafe_directory(str(theirs / ".")) == why
    (theirs / "otus").mkdir(mode=0o700)  # even with a directory of ours inside it
    assert unsafe_directory(str(theirs / "otus")) == why
    server = ControlServer(str(theirs / "otus" / "otus.sock"), Dispatcher({}))
    with pytest.raises(OtusError, match="another user could replace the socket"):
        asyncio.run(server.start())
    with pytest.raises(ControlError, match=f"not using the control socket .*: {re.escape(why)}"):
        call(str(theirs / "otus" / "otus.sock"), "daemon_status", timeout=5)


def test_a_daemon_users_directory_under_run_is_trusted(tmp_path: Path) -> None:
    need_root()
    # /run/otus, 0750 otus:otus (systemd RuntimeDirectory): a CLI user in the group talks to a
    # daemon of another uid; only root could have made the directory there
    run = tmp_path / "run"
    run.mkdir(mode=0o755)
    daemon_dir = run / "otus"
    daemon_dir.mkdir(mode=0o750)
    os.chown(daemon_dir, NOBODY, NOBODY)
    assert unsafe_directory(str(daemon_dir)) is None
    with pytest.raises(ControlError, match="no daemon is running"):  # checked, then connected
        call(str(daemon_dir / "otus.sock"), "daemon_status", timeout=5)
