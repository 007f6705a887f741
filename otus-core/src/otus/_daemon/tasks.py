"""Tasks held by the daemon: validation, state, workers, supervision, expiry, persistence.

A task is ``starting`` until every worker has reported ``started`` (its source is open), then
``running``. A worker that cannot start for a permanent reason (``OtusError.permanent``: no
such file or interface, permission denied, an option refused) fails a starting task at once;
other failures, and any death of a worker once its task runs, are restarted with backoff.
The state machine is documented in docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from otus._daemon.counters import TaskCounters
from otus._daemon.states import ALLOWED, TaskState
from otus._daemon.store import TaskStore, check_task_id
from otus._daemon.workers import WorkerSlot, WorkerSpawner
from otus.errors import ConfigError, OtusError

log = logging.getLogger("otus.daemon")

#: How long ``task_create`` waits by default for the workers to start or the task to fail.
START_WAIT = 10.0
#: The longest wait a client may ask for.
START_WAIT_MAX = 120.0
#: How often a waiting ``task_create`` looks at the workers' pipes.
_WAIT_POLL = 0.05

Validator = Callable[[dict[str, Any], str], Any]


@dataclass
class Task:
    id: str
    config: dict[str, Any]
    state: TaskState = TaskState.CREATED
    since: float = field(default_factory=time.time)
    created_at: float = field(default_factory=time.time)
    reason: str | None = None
    expires_at: float | None = None
    workers: list[WorkerSlot] = field(default_factory=list)
    counters: TaskCounters = field(default_factory=TaskCounters)

    def move(self, new: TaskState, reason: str | None = None) -> None:
        if new == self.state:
            return
        if new not in ALLOWED[self.state]:
            raise OtusError(f"task {self.id}: cannot go from {self.state.value} to {new.value}")
        self.state = new
        self.since = time.time()
        if reason is not None or new == TaskState.FAILED:
            self.reason = reason
        if new in (TaskState.RUNNING, TaskState.STOPPED, TaskState.FAILED):
            # When each task ran and why it ended, in the journal (and Loki) under its id.
            log.log(
                logging.WARNING if new == TaskState.FAILED else logging.INFO,
                "task %s %s%s", self.id, new.value, f" ({reason})" if reason else "",
                extra={"task": self.id},
            )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "since": _iso(self.since),
            "created_at": _iso(self.created_at),
            "reason": self.reason,
            "expires_at": _iso(self.expires_at) if self.expires_at else None,
            "workers": len(self.workers),
            "workers_alive": sum(1 for w in self.workers if w.alive),
            "workers_started": sum(1 for w in self.workers if w.started and w.alive),
            "worker_pids": [w.pid for w in self.workers if w.alive],
            "restarts": sum(w.restarts for w in self.workers),
            "last_error": next((w.last_error for w in self.workers if w.last_error), None),
        }

    def record(self) -> dict[str, Any]:
        """What is persisted."""
        return {
            "config": self.config,
            "state": self.state.value,
            "since": self.since,
            "created_at": self.created_at,
            "reason": self.reason,
            "expires_at": self.expires_at,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


class TaskManager:
    """Creates, supervises and stops tasks. All methods run on the daemon's event loop."""

    def __init__(
        self,
        *,
        validate: Validator,
        spawner: WorkerSpawner,
        store: TaskStore | None,
        max_task_history: int = 100,
        max_tasks: int = 32,
        max_workers_per_task: int = 64,
        stop_timeout: float = 10.0,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        restart_backoff: float = 0.5,
        restart_backoff_max: float = 30.0,
        on_event: Callable[[Task], None] | None = None,
    ) -> None:
        self.tasks: dict[str, Task] = {}
        self._validate = validate
        self._spawner = spawner
        self._store = store
        self._max_history = max_task_history
        self._max_tasks = max_tasks
        self._max_workers = max_workers_per_task
        self._stop_timeout = stop_timeout
        self._max_restarts = max_restarts
        self._restart_window = restart_window
        self._backoff = restart_backoff
        self._backoff_max = restart_backoff_max
        self._on_event = on_event
        self._lock = asyncio.Lock()
        self.worker_restarts_total = 0

    # -- control-plane operations -------------------------------------------------------------

    async def create(
        self, config: dict[str, Any], *, source: str = "<rpc>", wait: float = 0.0
    ) -> dict[str, Any]:
        """Validate, start and (for up to ``wait`` seconds) wait until every worker reported
        started or the task failed; the summary says which (``state``, ``reason``)."""
        if not isinstance(config, dict):
            raise ConfigError("a task config must be an object", source=source)
        validated = self._validate(config, source)
        task_id = check_task_id(validated.config.id)
        self._check_workers(validated.config.workers, source)
        async with self._lock:
            old = self.tasks.get(task_id)
            if old is not None and not old.state.terminal:
                raise ConfigError(
                    f"duplicate task id {task_id!r}: a task with this id is {old.state.value}; "
                    "delete it first",
                    source=source,
                    path="id",
                )
            self._check_room()
            expires_at = _expiry(validated.config)
            if expires_at is not None and expires_at <= time.time():
                when = datetime.fromtimestamp(expires_at, timezone.utc).isoformat()
                raise ConfigError(
                    f"expires_at {when} has passed: the task would stop at once",
                    source=source,
                    path="expires_at",
                )
            task = Task(id=task_id, config=config)
            task.expires_at = expires_at
            self.tasks[task_id] = task
            self._persist(task)
            await self._start(task)
            self._trim_history()
        if wait > 0:
            await self.wait_started(task, wait)
        return task.summary()

    async def wait_started(self, task: Task, timeout: float) -> None:
        """Return once ``task`` has left ``starting`` (running, failed, stopped) or after
        ``timeout`` seconds; the workers' pipes are read meanwhile, so it answers at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if task.state == TaskState.STARTING:
                self._supervise_task(task, time.time())
            if task.state != TaskState.STARTING:
                return
            await asyncio.sleep(_WAIT_POLL)

    async def delete(self, task_id: str) -> dict[str, Any]:
        task = self._get(task_id)
        await self.stop(task, reason="deleted")
        self.tasks.pop(task_id, None)
        if self._store is not None:
            self._store.delete(task_id)
        return task.summary()

    def update_worker_settings(self, settings: dict[str, Any], stats_interval: float) -> None:
        """Global settings for workers started from now on (after a reload)."""
        self._spawner.update(settings, stats_interval)

    def summaries(self) -> list[dict[str, Any]]:
        return [t.summary() for t in self.tasks.values()]

    def status(self, task_id: str | None = None) -> list[dict[str, Any]] | dict[str, Any]:
        if task_id is None:
            return [self._status(t) for t in self.tasks.values()]
        return self._status(self._get(task_id))

    def stats(self) -> dict[str, Any]:
        return {t.id: t.counters.total() for t in self.tasks.values()}

    def _status(self, task: Task) -> dict[str, Any]:
        out = task.summary()
        out["counts"] = task.counters.total()
        return out

    def _check_workers(self, workers: int, source: str) -> None:
        if workers > self._max_workers:
            raise ConfigError(
                f"{workers} workers is more than this daemon allows per task "
                f"({self._max_workers}, otus.resources.max_workers_per_task)",
                source=source,
                path="workers",
            )

    def _check_room(self) -> None:
        active = sum(1 for t in self.tasks.values() if not t.state.terminal)
        if active >= self._max_tasks:
            raise OtusError(
                f"the daemon already runs {active} tasks, its limit "
                "(otus.resources.max_tasks); stop or delete one first"
            )

    def _get(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise OtusError(f"no task {task_id!r}; tasks: {known}")
        return task

    # -- life cycle ---------------------------------------------------------------------------

    async def restore(self) -> list[str]:
        """Load persisted tasks; those that were running (or starting) start again."""
        if self._store is None:
            return []
        restored = []
        loaded = self._store.load_all()
        for problem in self._store.corrupt:
            path, _, why = problem.partition(": ")
            log.warning(
                "task file %s is damaged (%s): kept aside as %s, not restored",
                path, why, path.removesuffix(".json") + ".corrupt",
            )  # fmt: skip
        for task_id, rec in loaded.items():
            task = Task(id=task_id, config=rec["config"])
            task.created_at = rec.get("created_at", task.created_at)
            task.expires_at = rec.get("expires_at")
            state = TaskState(rec.get("state", "stopped"))
            if state.terminal:
                task.state, task.since, task.reason = (
                    state,
                    rec.get("since", time.time()),
                    rec.get("reason"),
                )
                self.tasks[task_id] = task
                continue
            source = f"{self._store.dir}/{task_id}.json"
            try:
                validated = self._validate(rec["config"], source)
                self._check_workers(validated.config.workers, source)
                self._check_room()  # before the task is added: it must not count itself
            except OtusError as exc:
                self.tasks[task_id] = task
                task.move(TaskState.FAILED, f"cannot restore: {exc}")
                self._persist(task)
                continue
            self.tasks[task_id] = task
            await self._start(task)
            restored.append(task_id)
        return restored

    async def _start(self, task: Task) -> None:
        """Spawn the workers; the task stays ``starting`` until they report (supervision)."""
        task.move(TaskState.STARTING)
        self._persist(task)
        self._emit(task)
        count = int(task.config.get("workers", 1))
        try:
            task.workers = [self._spawner.spawn(task.id, task.config, i) for i in range(count)]
        except OtusError as exc:
            for w in task.workers:
                self._spawner.kill(w)
            task.move(TaskState.FAILED, str(exc))
            self._persist(task)
            self._emit(task)

    async def stop(self, task: Task, *, reason: str | None = None) -> None:
        if task.state.terminal:
            return
        task.move(TaskState.STOPPING)
        self._emit(task)
        await asyncio.gather(*(self._spawner.stop(w, self._stop_timeout) for w in task.workers))
        for w in task.workers:
            if w.finished:
                continue
            self._collect(task, w)
            task.counters.worker_exited(w.index)
        task.move(TaskState.STOPPED, reason)
        self._persist(task)
        self._emit(task)

    async def stop_all(self, *, persist_state: bool = True) -> None:
        """Stop every task (daemon shutdown); running tasks stay marked running on disk so that
        a restart restores them."""
        running = [t for t in self.tasks.values() if not t.state.terminal]
        store, self._store = self._store, (self._store if persist_state else None)
        try:
            await asyncio.gather(*(self.stop(t, reason="daemon shutdown") for t in running))
        finally:
            self._store = store

    def supervise(self) -> None:
        """One supervision pass: read stats, note started workers, restart dead ones, expire."""
        now = time.time()
        for task in list(self.tasks.values()):
            if task.state not in (TaskState.STARTING, TaskState.RUNNING):
                continue
            self._supervise_task(task, now)
            if task.expires_at is not None and now >= task.expires_at and not task.state.terminal:
                asyncio.get_running_loop().create_task(self.stop(task, reason="expired"))

    def _supervise_task(self, task: Task, now: float) -> None:
        """Read the workers of a starting or running task and act on what they say."""
        for w in task.workers:
            self._collect(task, w)
            if w.finished:
                continue
            if task.state == TaskState.STARTING and w.start_permanent:
                # The configuration or the environment is wrong: restarting cannot help.
                self._fail(task, f"worker {w.index}: {w.start_error}")
                return
            if w.process is not None and not w.alive and w.process.exitcode == 0:
                # A finite source (a pcap file) was read to its end: done, not dead.
                self._collect(task, w)
                task.counters.worker_exited(w.index)
                w.finished = True
                w.process = None
                continue
            if w.alive or w.process is None:
                if w.process is None and time.monotonic() >= w.next_start:
                    self._respawn(task, w)
                continue
            # The worker died on its own (crash, signal from native code, error).
            w.last_error = w.exit_description()
            task.counters.worker_exited(w.index)
            w.process = None
            recent = [t for t in w.restart_times if now - t < self._restart_window]
            if len(recent) >= self._max_restarts:
                log.error(
                    "task %s: worker %d keeps dying: %s", task.id, w.index, w.last_error,
                    extra={"task": task.id, "worker": w.index},
                )  # fmt: skip
                self._fail(task, f"worker {w.index} keeps dying: {w.last_error}")
                return
            delay = min(self._backoff_max, self._backoff * (2 ** len(recent)))
            w.next_start = time.monotonic() + delay
            log.warning(
                "task %s: worker %d died (%s); restart in %.1fs",
                task.id, w.index, w.last_error, delay,
                extra={"task": task.id, "worker": w.index},
            )  # fmt: skip
        if task.state == TaskState.STARTING and all(w.started or w.finished for w in task.workers):
            task.move(TaskState.RUNNING)
            self._persist(task)
            self._emit(task)
        if task.workers and all(w.finished for w in task.workers):
            task.move(TaskState.STOPPING)
            task.move(TaskState.STOPPED, "completed")
            self._persist(task)
            self._emit(task)

    def _fail(self, task: Task, reason: str) -> None:
        """End every worker of ``task`` and mark it failed with ``reason``."""
        task.move(TaskState.FAILED, reason)
        for other in task.workers:
            self._spawner.kill(other)
            if not other.finished:
                self._collect(task, other)
                task.counters.worker_exited(other.index)
        self._persist(task)
        self._emit(task)

    def _respawn(self, task: Task, slot: WorkerSlot) -> None:
        try:
            fresh = self._spawner.spawn(task.id, task.config, slot.index)
        except OtusError as exc:
            slot.last_error = str(exc)
            slot.next_start = time.monotonic() + 5.0
            return
        slot.new_process(fresh.process, fresh.conn)
        slot.restarts += 1
        slot.restart_times.append(time.time())
        self.worker_restarts_total += 1

    def _collect(self, task: Task, w: WorkerSlot) -> None:
        for snapshot in self._spawner.drain(w):
            task.counters.update(w.index, snapshot)

    # -- persistence and events ---------------------------------------------------------------

    def _persist(self, task: Task) -> None:
        if self._store is not None:
            self._store.save(task.id, task.record())

    def _emit(self, task: Task) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event(task)

    def _trim_history(self) -> None:
        if self._max_history <= 0:
            return
        done = sorted((t for t in self.tasks.values() if t.state.terminal), key=lambda t: t.since)
        for task in done[: max(0, len(done) - self._max_history)]:
            self.tasks.pop(task.id, None)
            if self._store is not None:
                self._store.delete(task.id)


def _expiry(config: Any) -> float | None:
    expires_at = getattr(config, "expires_at", None)
    duration = getattr(config, "duration", None)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        return float(expires_at.timestamp())
    if duration:
        return time.time() + float(duration)
    return None
