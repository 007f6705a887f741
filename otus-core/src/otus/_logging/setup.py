"""One place that configures logging for the CLI, the daemon and the workers.

Code logs through stdlib ``logging`` or ``structlog.get_logger()``; both go through the same
structlog processors, so every line has ``timestamp``, ``level`` and ``event`` (plus
``task``/``worker`` when bound via :func:`bind`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

from otus._logging.files import RotatingFile
from otus._logging.loki import LokiHandler
from otus.errors import OtusError

_handlers: list[logging.Handler] = []

# Libraries that log every failed reconnect (aiokafka: several lines a second per worker while a
# broker is down); Otus logs the outage itself, rate-limited, and counts it.
NOISY_LIBRARIES = ("aiokafka",)


class RepeatLimiter(logging.Filter):
    """Lets a line of the given loggers through once per ``window`` seconds; the next one let
    through carries ``repeats_held_back`` (how many were held back). Keyed on the logger and the
    unformatted message, so a reconnect loop repeating itself is one line a minute."""

    _MAX_KEYS = 1024

    def __init__(
        self,
        prefixes: tuple[str, ...],
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._window = window
        self._clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [last shown, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == p or name.startswith(p + ".") for p in self._prefixes):
            return True
        key = (name, str(record.msg))
        now = self._clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self._window:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            record.repeats_held_back = int(entry[1])
        if len(self._seen) >= self._MAX_KEYS:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def _renderer(fmt: str, stream_is_tty: bool) -> Any:
    if fmt == "auto":
        fmt = "console" if stream_is_tty else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=stream_is_tty)
    return structlog.processors.JSONRenderer()


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    *,
    file: dict[str, Any] | None = None,
    loki: dict[str, Any] | None = None,
    static: dict[str, str] | None = None,
) -> list[logging.Handler]:
    """(Re)configure logging. ``file``/``loki`` are dicts of the ``otus.log`` config sections."""
    for handler in _handlers:
        logging.getLogger().removeHandler(handler)
        handler.close()
    _handlers.clear()

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    def formatter(renderer: Any) -> logging.Formatter:
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter(_renderer(fmt, sys.stderr.isatty())))
    _handlers.append(stderr)
    if file and file.get("path"):
        try:
            fh = RotatingFile(
                file["path"],
                max_bytes=int(file.get("max_size", 100 * 1024 * 1024)),
                backups=int(file.get("backups", 5)),
                max_age=file.get("max_age"),
                compress=bool(file.get("compress", True)),
            )
        except OSError as exc:
            raise OtusError(
                f"otus.log.file.path: cannot open {file['path']}: {exc.strerror}"
            ) from None
        fh.setFormatter(formatter(structlog.processors.JSONRenderer()))
        _handlers.append(fh)
    if loki and loki.get("url"):
        lh = LokiHandler(
            loki["url"],
            {**(static or {}), **loki.get("labels", {})},
            batch_size=int(loki.get("batch_size", 500)),
            batch_wait=float(loki.get("batch_wait", 1.0)),
            buffer=int(loki.get("buffer", 10_000)),
            timeout=float(loki.get("timeout", 5.0)),
        )
        lh.setFormatter(formatter(structlog.processors.JSONRenderer()))
        _handlers.append(lh)
    root = logging.getLogger()
    for handler in _handlers:
        handler.addFilter(RepeatLimiter(NOISY_LIBRARIES))  # one each: a filter sees every record
        root.addHandler(handler)
    set_level(level)
    return list(_handlers)


def loki_stats() -> dict[str, int]:
    """``sent``/``dropped``/``errors``/``buffered`` of this process's Loki output; empty
    without one. Read at statistics time (``log.loki.*``) and by the daemon's /metrics."""
    for handler in _handlers:
        if isinstance(handler, LokiHandler):
            return handler.stats()
    return {}


def set_level(level: str) -> None:
    """Change the level of every Otus logger (used by ``reload``)."""
    logging.getLogger().setLevel(level.upper())


def bind(**values: Any) -> None:
    """Attach ``task``/``worker``/… to every following log line of this process or task."""
    structlog.contextvars.bind_contextvars(**values)
