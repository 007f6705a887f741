"""One pipeline in its own process (design §3): the entry point the daemon starts per worker.

:func:`run_worker` is a plain module-level function, so ``multiprocessing`` can start it with
``spawn`` or ``forkserver``. It validates the task itself (a worker trusts nothing it was sent),
builds and runs one pipeline, sends statistics snapshots over ``stats_conn`` about every
``stats_interval`` seconds, and ends cleanly on SIGTERM: stop capturing, flush parsers and
reporters within ``flush_timeout``, send the last snapshot, return the exit code.

Messages on ``stats_conn`` (the daemon's view of a worker's start, docs/architecture.md):

- ``{"type": "started"}`` once: the pipeline is built, its source open, its reporters started;
- ``{"type": "start_failed", "message": "…", "permanent": bool}`` instead, when building or
  opening failed; ``permanent`` is the error's :attr:`otus.errors.OtusError.permanent`;
- ``{"type": "stats", "stats": snapshot}`` about every ``stats_interval`` (``docs/pipeline.md``);
- ``{"type": "error", "message": "…"}`` when the pipeline fails after it started.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from typing import Any, Protocol

from otus._pipeline.builder import build_pipeline
from otus._pipeline.runner import Runner
from otus.context import PluginContext
from otus.errors import OtusError

log = logging.getLogger("otus.worker")


class Sender(Protocol):
    """The writing end of a ``multiprocessing`` pipe or queue."""

    def send(self, obj: Any) -> None: ...


def plain_settings(settings: Any) -> dict[str, Any]:
    """The global configuration as plain JSON-able data *with* secrets (plugins need the Kafka
    password; ``model_dump(mode="json")`` would mask it as ``**********``)."""
    from pydantic import SecretStr

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [reveal(v) for v in value]
        return value

    data: dict[str, Any] = reveal(settings.model_dump(mode="python"))
    return data


def pipeline_context(
    task_id: str, workers: int, settings: Any, pipeline_id: int, settings_data: dict[str, Any]
) -> PluginContext:
    """The :class:`PluginContext` of pipeline ``pipeline_id`` of a task."""
    return PluginContext(
        task_id=task_id,
        agent_id=settings.node.hostname,
        pipeline_id=pipeline_id,
        workers=workers,
        node_tags=dict(settings.node.tags),
        data_dir=settings.data_dir,
        settings=settings_data,
    )


def run_worker(
    task: dict[str, Any],
    pipeline_id: int,
    stats_conn: Sender | None,
    settings: dict[str, Any] | None = None,
    stats_interval: float = 1.0,
    flush_timeout: float = 5.0,
) -> None:
    """Process target: :func:`worker_main`, then exit with its code (0 ok, 1 failed)."""
    _die_with_parent()
    _configure_logging(task, pipeline_id, settings)
    limit_memory(int((settings or {}).get("resources", {}).get("max_memory_per_worker", 0)))
    raise SystemExit(
        worker_main(task, pipeline_id, stats_conn, settings, stats_interval, flush_timeout)
    )


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the daemon dies (even by ``kill -9``), so that no
    orphaned worker keeps capturing after its daemon is gone (``PR_SET_PDEATHSIG``)."""
    import ctypes
    import os

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the daemon died before prctl took effect: we were re-parented
        raise SystemExit(0)


def limit_memory(max_bytes: int) -> None:
    """Cap this process's address space (``otus.resources.max_memory_per_worker``; 0: no cap),
    so a runaway worker fails its own allocations instead of the machine's."""
    import resource

    if max_bytes <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        max_bytes = min(max_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard))


def _configure_logging(task: dict[str, Any], pipeline_id: int, settings: Any) -> None:
    """A worker logs like the daemon (stderr, Loki) with ``task`` and ``worker`` on every line.

    The rotating file is left to the daemon: several processes rotating one file would race.
    """
    from otus._config.settings import Settings
    from otus._logging.setup import bind, configure_logging

    try:
        log_cfg = Settings.model_validate(settings or {}).log
        node = Settings.model_validate(settings or {}).node
    except Exception:  # a bad config is reported by worker_main; log with defaults meanwhile
        configure_logging()
    else:
        configure_logging(
            log_cfg.level,
            log_cfg.format,
            loki=log_cfg.loki.model_dump(),
            static={"app": "otus", "host": node.hostname, **node.tags},
        )
    bind(task=str(task.get("id", "?")), worker=pipeline_id)


def worker_main(
    task: dict[str, Any],
    pipeline_id: int,
    stats_conn: Sender | None,
    settings: dict[str, Any] | None = None,
    stats_interval: float = 1.0,
    flush_timeout: float = 5.0,
) -> int:
    """Run pipeline ``pipeline_id`` of ``task`` (plain task data) until it ends or SIGTERM.

    ``settings`` is the global configuration as plain data (:func:`plain_settings`; a dump
    with masked secrets would hand plugins ``**********`` as passwords); ``None`` means
    defaults. Returns the exit code: 0 when the run completed or was stopped, 1 when it failed.
    """
    from otus._config.settings import Settings
    from otus._config.validate import validate_task
    from otus._plugins.registry import load_registry

    def send(msg: dict[str, Any]) -> None:
        if stats_conn is not None:
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                stats_conn.send(msg)

    runner: Runner | None = None
    stop_requested = False

    def on_sigterm(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True
        if runner is not None:
            runner.stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C in the daemon's terminal reaches the whole process group; the daemon decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        parsed = Settings.model_validate(settings or {})
        registry = load_registry()
        validated = validate_task(
            task,
            source=f"<task {task.get('id', '?')}>",
            registry=registry,
            decoder_defaults=parsed.core.decoder,
        )
        cfg = validated.config
        context = pipeline_context(cfg.id, cfg.workers, parsed, pipeline_id, plain_settings(parsed))
        pipeline = build_pipeline(validated, context)
    except OtusError as exc:
        message = _memory_hint(str(exc), settings)
        send({"type": "start_failed", "message": message, "permanent": exc.permanent})
        return 1

    last_sent = time.monotonic()

    def on_tick() -> None:
        nonlocal last_sent
        now = time.monotonic()
        if now - last_sent >= stats_interval:
            last_sent = now
            send({"type": "stats", "stats": pipeline.snapshot()})

    started = False

    def on_started() -> None:
        nonlocal started
        started = True
        send({"type": "started"})

    runner = Runner(pipeline, on_tick=on_tick, flush_timeout=flush_timeout, on_started=on_started)
    if stop_requested:
        runner.stop()
    result = runner.run()
    send({"type": "stats", "stats": result.snapshot})
    if result.status == "failed":
        error = _memory_hint(result.error or "pipeline failed", settings)
        if started:
            send({"type": "error", "message": error})
        else:
            send({"type": "start_failed", "message": error, "permanent": result.permanent})
        log.error("pipeline %d of task %s failed: %s", pipeline_id, cfg.id, error)
        return 1
    return 0


#: How running out of address space shows in an error: a thread that cannot start, an
#: allocation that fails (Python, C, mmap).
_OUT_OF_MEMORY = ("can't start new thread", "MemoryError", "Cannot allocate memory")


def _memory_hint(message: str, settings: dict[str, Any] | None) -> str:
    """``message``, plus which setting to raise when the worker's address-space cap is what
    ran out: "can't start new thread" alone does not tell an operator."""
    limit = int((settings or {}).get("resources", {}).get("max_memory_per_worker", 0))
    if not limit or not any(sign in message for sign in _OUT_OF_MEMORY):
        return message
    from otus._config.docs import format_size

    return (
        f"{message} (otus.resources.max_memory_per_worker caps this worker's address space "
        f"at {format_size(limit)}; threads and native buffers need more: raise it, or 0 for "
        "no cap)"
    )
