"""Persistence of tasks under ``data_dir/tasks/`` (design §5).

Each task is one JSON file written atomically (temp file, fsync, rename, fsync of the
directory), so a crash at any moment leaves either the old or the new file, never a torn one.
Task ids are validated before they become file names, so no id can escape the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from otus._daemon.states import TaskState
from otus.errors import ConfigError, OtusError

TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_task_id(task_id: str) -> str:
    """Return ``task_id`` if it is a safe task id, else raise :class:`ConfigError`."""
    if not isinstance(task_id, str) or not TASK_ID.match(task_id) or ".." in task_id:
        raise ConfigError(
            f"invalid task id {task_id!r}: use 1-64 letters, digits, '_', '-', '.' "
            "starting with a letter or digit",
            path="id",
        )
    return task_id


class TaskStore:
    """Reads and writes task records (``{"config": {...}, "state": ..., ...}``)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.dir = Path(data_dir) / "tasks"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OtusError(f"cannot use the data directory {data_dir}: {exc.strerror}") from None
        self.corrupt: list[str] = []

    def _path(self, task_id: str) -> Path:
        return self.dir / f"{check_task_id(task_id)}.json"

    def save(self, task_id: str, record: dict[str, Any]) -> None:
        path = self._path(task_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._fsync_dir()

    def delete(self, task_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(task_id).unlink()
            self._fsync_dir()

    def load_all(self) -> dict[str, dict[str, Any]]:
        """Every stored task; leftovers of interrupted writes are removed, corrupt files kept
        aside (renamed ``*.corrupt``) and listed in :attr:`corrupt`."""
        tasks: dict[str, dict[str, Any]] = {}
        for tmp in self.dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        for path in sorted(self.dir.glob("*.json")):
            task_id = path.stem
            try:
                check_task_id(task_id)
                record = json.loads(path.read_bytes())
                _check_record(record)
            except (ValueError, ConfigError) as exc:
                self.corrupt.append(f"{path}: {exc}")
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".corrupt"))
                continue
            tasks[task_id] = record
        return tasks

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_TIMES = ("since", "created_at", "expires_at")


def _check_record(record: Any) -> None:
    """``ValueError`` unless ``record`` has the shape :meth:`Task.record` writes, so a file
    damaged by hand or by a disk is kept aside instead of failing the daemon's start."""
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ValueError("not a task record (no 'config' object)")
    state = record.get("state", "stopped")
    if state not in {s.value for s in TaskState}:
        raise ValueError(f"unknown state {state!r}")
    for key in _TIMES:
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{key} is not a timestamp: {value!r}")
    if not isinstance(record.get("reason"), (str, type(None))):
        raise ValueError(f"reason is not text: {record['reason']!r}")
