"""The daemon's life cycle: start, signals, supervision loop, graceful drain and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import time
from pathlib import Path
from typing import Any

from otus import __version__
from otus._control.jsonrpc import Dispatcher
from otus._control.server import ControlServer
from otus._daemon.methods import build_methods
from otus._daemon.pidfile import PidFile
from otus._daemon.store import TaskStore
from otus._daemon.tasks import TaskManager
from otus._daemon.workers import WorkerSpawner
from otus._pipeline.worker import plain_settings
from otus.errors import OtusError

log = logging.getLogger("otus.daemon")

SUPERVISE_INTERVAL = 0.5
#: Keys of the global config that apply without a restart.
LIVE_KEYS = ("log.level", "metrics.interval", "node.tags")


class Daemon:
    """Holds the tasks and serves the control plane; never touches packets itself."""

    def __init__(self, settings: Any, config_path: str | None, registry: Any) -> None:
        self.settings = settings
        self.config_path = config_path
        self.registry = registry
        self.pid = os.getpid()
        self.started_at = time.time()
        self.socket_path = str(settings.control.socket)
        self.data_dir = str(settings.data_dir)
        self.pid_path = str(Path(self.socket_path).with_suffix(".pid"))
        self._shutdown = asyncio.Event()
        self._signals = 0
        persistence = settings.task_persistence
        store = TaskStore(self.data_dir) if persistence.enabled else None
        self.tasks = TaskManager(
            validate=self._validate,
            spawner=WorkerSpawner(plain_settings(settings), settings.metrics.interval),
            store=store,
            max_task_history=persistence.max_task_history,
            max_tasks=settings.resources.max_tasks,
            max_workers_per_task=settings.resources.max_workers_per_task,
            restart_backoff=settings.resources.restart_backoff,
            restart_backoff_max=settings.resources.restart_backoff_max,
            on_event=self._task_event,
        )
        self.command_channel: Any = None  # otus._control.kafka_channel.CommandChannel
        self.shutdown_reason = ""

    # -- helpers used by the methods ----------------------------------------------------------

    def _validate(self, config: dict[str, Any], source: str) -> Any:
        from otus._config.validate import validate_task

        return validate_task(
            config,
            source=source,
            registry=self.registry,
            decoder_defaults=self.settings.core.decoder,
            node_tags=self.settings.node.tags,
        )

    def _task_event(self, task: Any) -> None:
        if self.command_channel is not None:
            self.command_channel.task_event(task)

    def plugin_entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.registry.entries() if kind is None or e.kind == kind]

    def plugin_summary(self) -> list[str]:
        return [f"{e.kind}:{e.name}" for e in self.registry.entries() if e.status == "loaded"]

    def stats(self) -> dict[str, Any]:
        return {
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "worker_restarts_total": self.tasks.worker_restarts_total,
            "task_states": {t["id"]: t["state"] for t in self.tasks.summaries()},
            "tasks": self.tasks.stats(),
            **({"command_channel": self.command_channel.stats()} if self.command_channel else {}),
        }

    def metric_rows(self) -> list[tuple[str, str, str, dict[int, dict[str, Any]], int]]:
        """Per task: id, state, interface label, per-worker counters, restarts (for /metrics)."""
        rows = []
        for task in list(self.tasks.tasks.values()):
            capture = task.config.get("capture", {})
            iface = str(capture.get("config", {}).get("interface") or capture.get("name", "?"))
            restarts = sum(w.restarts for w in task.workers)
            rows.append((task.id, task.state.value, iface, task.counters.per_worker(), restarts))
        return rows

    def reload(self) -> dict[str, Any]:
        """Re-read the global config; apply live keys, name those that need a restart."""
        from otus._config.settings import load_settings

        new = load_settings(self.config_path)
        old_flat, new_flat = (
            _flatten(self.settings.model_dump(mode="json")),
            _flatten(new.model_dump(mode="json")),
        )
        changed = sorted(
            k for k in set(old_flat) | set(new_flat) if old_flat.get(k) != new_flat.get(k)
        )
        applied = [k for k in changed if k.startswith(LIVE_KEYS)]
        restart = [k for k in changed if k not in applied]
        if any(k.startswith("log.level") for k in applied):
            from otus._logging.setup import set_level

            set_level(new.log.level)
        # Workers started from now on (new tasks, restarts) get the new tags and interval.
        self.tasks.update_worker_settings(plain_settings(new), new.metrics.interval)
        self.settings = new
        log.info("configuration reloaded: applied %s; need restart %s", applied, restart)
        return {"changed": changed, "applied": applied, "restart_required": restart}

    def request_shutdown(self, reason: str) -> None:
        self.shutdown_reason = reason
        self._shutdown.set()

    # -- life cycle ---------------------------------------------------------------------------

    async def run(self) -> int:
        _raise_fd_limit()
        pidfile = PidFile(self.pid_path)
        pidfile.acquire()
        server: ControlServer | None = None
        metrics: Any = None
        try:
            _clear_stale_socket(self.socket_path)
            server = ControlServer(
                self.socket_path,
                Dispatcher(build_methods(self)),
                group=self.settings.control.group,
                max_request_bytes=self.settings.control.max_request_size,
                idle_timeout=self.settings.control.request_timeout,
                max_clients=self.settings.control.max_connections,
            )
            await server.start()
            if self.settings.metrics.enabled:
                from otus._metrics.server import MetricsServer

                metrics = MetricsServer(
                    self.settings.metrics.listen,
                    self.settings.metrics.path,
                    self.metric_rows,
                    self.registry.metrics(),
                )
                metrics.start()
            if self.settings.command_channel.enabled:
                from otus._control.kafka_channel import CommandChannel, heartbeat_status

                self.command_channel = CommandChannel(
                    self.settings, build_methods(self), lambda: heartbeat_status(self)
                )
                self.command_channel.start()
            self._install_signals()
            restored = (
                await self.tasks.restore()
                if self.settings.task_persistence.restore_on_start
                else []
            )
            log.info(
                "otus daemon started: version=%s pid=%d config=%s socket=%s data_dir=%s "
                "plugins=%s restored=%s",
                __version__, self.pid, self.config_path or "<defaults>", self.socket_path,
                self.data_dir, ",".join(self.plugin_summary()), restored,
            )  # fmt: skip
            while not self._shutdown.is_set():
                self.tasks.supervise()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._shutdown.wait(), SUPERVISE_INTERVAL)
            log.info("otus daemon stopping: %s", self.shutdown_reason)
            await server.close()  # stop accepting commands first
            server = None
            if self.command_channel is not None:
                await self.command_channel.close()
            await self.tasks.stop_all(persist_state=False)
            return 0
        finally:
            if server is not None:
                await server.close()
            if metrics is not None:
                metrics.close()
            if self.command_channel is not None:
                await self.command_channel.close()
                self.command_channel = None
            pidfile.release()
            log.info("otus daemon stopped")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()

        def on_stop(signame: str) -> None:
            self._signals += 1
            if self._signals > 1:
                log.warning("second %s: forcing exit", signame)
                for task in self.tasks.tasks.values():
                    for w in task.workers:
                        self.tasks._spawner.kill(w)
                with contextlib.suppress(OSError):
                    os.unlink(self.socket_path)
                with contextlib.suppress(OSError):
                    os.unlink(self.pid_path)
                os._exit(1)
            self.request_shutdown(signame)

        def on_hup() -> None:
            try:
                self.reload()
            except OtusError as exc:
                log.error("reload failed, keeping the old configuration: %s", exc)

        loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, on_hup)


def _raise_fd_limit() -> None:
    """Lift the soft open-file limit to the hard one: every control client and every worker
    pipe is a file descriptor, and 1,000 idle clients must not starve the daemon."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _clear_stale_socket(path: str) -> None:
    """Remove a socket file no daemon listens on (left by a crash); refuse if one does, and
    never touch a path that is not a socket (``--socket`` naming a config file by mistake)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OtusError(
            f"{path}: exists and is not a socket; not replacing it "
            "(check --socket / otus.control.socket)"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        log.warning("removed stale control socket %s", path)
        return
    finally:
        probe.close()
    raise OtusError(f"another otus daemon is already listening on {path}")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def run_daemon(settings: Any, config_path: str | None, registry: Any) -> int:
    return asyncio.run(Daemon(settings, config_path, registry).run())
