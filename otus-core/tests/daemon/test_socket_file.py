"""The control socket path: a file left by a crash is replaced, anything else is refused."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from otus._daemon.lifecycle import _clear_stale_socket
from otus.errors import OtusError


def test_a_socket_nobody_listens_on_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "otus.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a crash leaves
    _clear_stale_socket(str(path))
    assert not path.exists()


def test_a_socket_someone_listens_on_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "otus.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(OtusError, match="already listening"):
            _clear_stale_socket(str(path))
    assert path.exists()


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_path_that_is_not_a_socket_is_left_alone(tmp_path: Path, kind: str) -> None:
    """`otus daemon --socket /etc/otus/otus.toml` (a slip for --config) must not delete it."""
    path = tmp_path / "otus.toml"
    if kind == "file":
        path.write_text("[otus]\n")
    else:
        path.mkdir()
    with pytest.raises(OtusError, match=f"{path}: exists and is not a socket"):
        _clear_stale_socket(str(path))
    assert path.exists()
    if kind == "file":
        assert path.read_text() == "[otus]\n"
