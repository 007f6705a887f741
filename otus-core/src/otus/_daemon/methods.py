"""The control-plane methods of the daemon (shared by the Unix socket and the Kafka channel)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from otus import __version__
from otus._control.jsonrpc import INVALID_PARAMS, RpcError

if TYPE_CHECKING:
    from otus._daemon.lifecycle import Daemon

Handler = Callable[..., Awaitable[Any]]


def build_methods(daemon: Daemon) -> dict[str, Handler]:
    """Every method name of design §5 bound to the daemon."""
    tasks = daemon.tasks

    async def task_create(config: dict[str, Any]) -> Any:
        if not isinstance(config, dict):
            raise RpcError(INVALID_PARAMS, "invalid params: 'config' must be an object")
        return await tasks.create(config)

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
