"""Worker processes: one pipeline each, started with ``spawn`` so no daemon state leaks in.

The daemon never touches packets: a crash in native code takes down one worker only. A
worker says over a pipe when it has started (or why it could not) and then sends cumulative
statistics snapshots; the daemon reads them without blocking during supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from otus.errors import OtusError

_MP = multiprocessing.get_context("spawn")


@dataclass
class WorkerSlot:
    """One worker position of a task; the process in it changes across restarts."""

    index: int
    process: BaseProcess | None
    conn: Connection | None
    restarts: int = 0
    restart_times: list[float] = field(default_factory=list)
    next_start: float = 0.0
    last_error: str | None = None
    #: The worker ended by itself with exit code 0: its source is exhausted (a pcap file).
    finished: bool = False
    #: The current process reported ``started`` (pipeline built, source open).
    started: bool = False
    #: The current process reported that it could not start, and why.
    start_error: str | None = None
    #: ... and that retrying cannot help (``OtusError.permanent``).
    start_permanent: bool = False

    def new_process(self, process: BaseProcess | None, conn: Connection | None) -> None:
        """A fresh process in this slot: it has not started yet."""
        self.process, self.conn = process, conn
        self.started, self.start_error, self.start_permanent = False, None, False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exit_description(self) -> str:
        code = self.process.exitcode if self.process is not None else None
        if code is None:
            return self.last_error or "still running"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"killed by {name}" + (f" ({self.last_error})" if self.last_error else "")
        return f"exited with code {code}" + (f" ({self.last_error})" if self.last_error else "")


class WorkerSpawner:
    """Starts, reads and stops worker processes running ``otus._pipeline.worker.run_worker``."""

    def __init__(self, settings: dict[str, Any], stats_interval: float = 1.0) -> None:
        self._settings = settings
        self._interval = stats_interval

    def update(self, settings: dict[str, Any], stats_interval: float) -> None:
        self._settings = settings
        self._interval = stats_interval

    def spawn(self, task_id: str, config: dict[str, Any], index: int) -> WorkerSlot:
        from otus._pipeline.worker import run_worker

        parent, child = _MP.Pipe(duplex=False)
        proc = _MP.Process(
            target=run_worker,
            args=(config, index, child, self._settings, self._interval),
            name=f"otus-worker-{task_id}-{index}",
            daemon=False,
        )
        try:
            proc.start()
        except OSError as exc:
            raise OtusError(f"cannot start worker {index} of task {task_id}: {exc}") from exc
        finally:
            child.close()
        return WorkerSlot(index=index, process=proc, conn=parent)

    def drain(self, slot: WorkerSlot) -> list[dict[str, Any]]:
        """Statistics snapshots received since the last call (never blocks)."""
        out: list[dict[str, Any]] = []
        conn = slot.conn
        if conn is None:
            return out
        try:
            while conn.poll():
                msg = conn.recv()
                if not isinstance(msg, dict):
                    continue
                kind = msg.get("type")
                if kind == "stats":
                    out.append(msg["stats"])
                elif kind == "started":
                    slot.started = True
                elif kind == "start_failed":
                    slot.last_error = slot.start_error = str(msg.get("message"))
                    slot.start_permanent = bool(msg.get("permanent"))
                elif kind == "error":
                    slot.last_error = str(msg.get("message"))
        except (EOFError, OSError):
            with contextlib.suppress(OSError):
                conn.close()
            slot.conn = None
        return out

    async def stop(self, slot: WorkerSlot, timeout: float) -> None:
        """SIGTERM (drain and flush), then SIGKILL after ``timeout`` seconds."""
        proc = slot.process
        if proc is None:
            return
        if proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.is_alive():
            proc.kill()
            await asyncio.sleep(0.05)
        proc.join(timeout=1.0)

    def kill(self, slot: WorkerSlot) -> None:
        if slot.process is not None and slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout=1.0)
