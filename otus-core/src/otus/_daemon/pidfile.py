"""The daemon's pid file, held with an exclusive ``flock`` for the daemon's lifetime.

A lock (not the mere existence of the file) says a daemon is alive, so a pid file left by a
crash (``kill -9``) is recognised as stale and taken over without manual cleanup.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from otus.errors import OtusError


class PidFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OtusError(f"cannot write the pid file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OtusError(
                f"another otus daemon (pid {other}) is already running with pid file {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None
