"""The control-plane methods of the daemon (shared by the Unix socket and the Kafka channel)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from otus import __version__
from otus._control.jsonrpc import INVALID_PARAMS, TASK_FAILED, RpcError
from otus._daemon.tasks import START_WAIT, START_WAIT_MAX

if TYPE_CHECKING:
    from otus._daemon.lifecycle import Daemon

Handler = Callable[..., Awaitable[Any]]


def build_methods(daemon: Daemon) -> dict[str, Handler]:
    """Every method name of design §5 bound to the daemon."""
    tasks = daemon.tasks

    async def task_create(config: dict[str, Any], wait: float | None = None) -> Any:
        """Create and start a task; answer once it runs (or failed, an error with its summary
        as ``data``), or after ``wait`` seconds (default 10, 0: at once) still ``starting``."""
        if not isinstance(config, dict):
            raise RpcError(INVALID_PARAMS, "invalid params: 'config' must be an object")
        seconds = _wait_seconds(wait)
        summary = await tasks.create(config, wait=seconds)
        if summary["state"] == "failed":
            raise RpcError(
                TASK_FAILED, f"task {summary['id']} failed to start: {summary['reason']}", summary
            )
        return summary

    async def task_delete(id: str) -> Any:
        return await tasks.delete(id)

    async def task_list() -> Any:
        return tasks.summaries()

    async def task_status(id: str | None = None) -> Any:
        return tasks.status(id)

    async def config_reload() -> Any:
        return daemon.reload()

    async def daemon_status() -> Any:
        return {
            "version": __version__,
            "pid": daemon.pid,
            "uptime_seconds": round(time.time() - daemon.started_at, 3),
            "config": daemon.config_path,
            "socket": daemon.socket_path,
            "data_dir": daemon.data_dir,
            "tasks": {t["id"]: t["state"] for t in tasks.summaries()},
            "plugins": daemon.plugin_summary(),
        }

    async def daemon_stats() -> Any:
        return daemon.stats()

    async def daemon_shutdown() -> Any:
        daemon.request_shutdown("daemon_shutdown request")
        return {"shutting_down": True}

    async def plugins_list(kind: str | None = None) -> Any:
        return daemon.plugin_entries(kind)

    return {
        "task_create": task_create,
        "task_delete": task_delete,
        "task_list": task_list,
        "task_status": task_status,
        "config_reload": config_reload,
        "daemon_status": daemon_status,
        "daemon_stats": daemon_stats,
        "daemon_shutdown": daemon_shutdown,
        "plugins_list": plugins_list,
    }


def _wait_seconds(wait: Any) -> float:
    """``task_create``'s ``wait``: seconds from 0 to :data:`START_WAIT_MAX`; ``None``: default."""
    if wait is None:
        return START_WAIT
    if (
        isinstance(wait, bool)
        or not isinstance(wait, int | float)
        or not 0 <= wait <= START_WAIT_MAX
    ):
        raise RpcError(
            INVALID_PARAMS,
            f"invalid params: 'wait' must be a number of seconds from 0 to {START_WAIT_MAX:g}",
        )
    return float(wait)
