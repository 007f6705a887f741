"""The pid file lock tells a live daemon from a stale file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from otus._daemon.pidfile import PidFile
from otus.errors import OtusError


def test_second_holder_is_refused_and_stale_file_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "otus.pid"
    path.write_text("999999\n")  # stale: nobody holds the lock
    first = PidFile(path)
    first.acquire()
    assert path.read_text().strip() == str(os.getpid())
    with pytest.raises(OtusError, match="already running"):
        PidFile(path).acquire()
    first.release()
    assert not path.exists()
