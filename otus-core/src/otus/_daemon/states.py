"""Task states and the transitions allowed between them."""

from __future__ import annotations

import enum


class TaskState(str, enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.STOPPED, TaskState.FAILED)


ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.CREATED: frozenset({TaskState.STARTING, TaskState.STOPPED, TaskState.FAILED}),
    TaskState.STARTING: frozenset({TaskState.RUNNING, TaskState.STOPPING, TaskState.FAILED}),
    TaskState.RUNNING: frozenset({TaskState.STOPPING, TaskState.FAILED}),
    TaskState.STOPPING: frozenset({TaskState.STOPPED, TaskState.FAILED}),
    TaskState.STOPPED: frozenset(),
    TaskState.FAILED: frozenset(),
}
