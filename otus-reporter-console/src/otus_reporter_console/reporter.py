"""The console reporter: formats records on the caller's thread, writes them on its own.

``report()`` formats a batch and appends it to a buffer bounded in records and in bytes; a
background thread writes the buffer out. A terminal that is slow (or a pipe nobody reads) only
fills the buffer: what does not fit is dropped and counted as ``dropped.buffer_full``, and the
pipeline never waits on a ``write()``. When the source can wait (a file read as fast as it
goes), the run loop asks :meth:`ConsoleReporter.wait_for_room` first and nothing is dropped.

The bounded buffer is local rather than :class:`otus.queues.BoundedQueue` because it bounds two
weights at once (records and bytes) while that queue bounds the number of items.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

from otus import PluginContext, PluginError, Record, Reporter
from otus_reporter_console._format import Formatter, json_line, text_line
from otus_reporter_console.options import ConsoleOptions

__all__ = ["ConsoleReporter"]

_STD_STREAMS = {"-": "stdout", "stdout": "stdout", "stderr": "stderr"}
log = logging.getLogger(__name__)


class _TextSink:
    """Adapts a text-only stream (a replaced ``sys.stdout``) to the bytes the writer produces."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes | memoryview) -> int:
        self._stream.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()


class ConsoleReporter(Reporter):
    """Writes records to stdout, stderr or a file as JSON lines or text (see the README)."""

    def __init__(
        self,
        options: ConsoleOptions,
        context: PluginContext | None = None,
        *,
        stream: Any = None,
    ) -> None:
        """``stream`` (a binary file-like) replaces ``options.output``; tests use it."""
        self.options = options
        self._stream: Any = stream
        self._owns_stream = False
        self._format: Formatter | None = None
        self._cond = threading.Condition(threading.Lock())
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._in_flight = 0  # records the writer has taken and not yet written
        self._abandoned = False  # close() gave up on the in-flight write and counted it dropped
        self._failing: str | None = None  # the write error last logged, until a write succeeds
        # plain counters, read by stats() from any thread
        self.buffered_records = 0
        self.buffered_bytes = 0
        self.written_records = 0
        self.written_bytes = 0
        self.errors = 0
        self.write_failures = 0
        self.dropped_full = 0
        self.dropped_closed = 0

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        if self._stream is None:
            self._stream = self._open(self.options.output)
        fmt = self.options.format
        if fmt == "auto":
            fmt = "text" if _isatty(self._stream) else "json"
        self._format = text_line if fmt == "text" else json_line(self.options.include_raw)
        self._thread = threading.Thread(target=self._run, name="otus-console-writer", daemon=True)
        self._thread.start()

    def _open(self, output: str) -> Any:
        std = _STD_STREAMS.get(output)
        if std is not None:
            stream = getattr(sys, std)
            binary = getattr(stream, "buffer", None)
            return binary if binary is not None else _TextSink(stream)
        try:
            handle = open(output, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise PluginError(
                f"console reporter: cannot open output {output!r}: {exc.strerror}"
            ) from exc
        self._owns_stream = True
        return handle

    # -- the pipeline side ------------------------------------------------------------------------

    def report(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._thread is None:
            self.start()
        fmt = self._format
        assert fmt is not None
        opts = self.options
        room = self._record_room()
        if room is None:
            self.dropped_closed += len(records)
            return
        if room <= 0:
            self.dropped_full += len(records)
            return
        lines: list[bytes] = []
        failed = 0
        for record in records[:room] if room < len(records) else records:
            try:
                lines.append(fmt(record))
            except (TypeError, ValueError):  # a parser put something unserialisable in payload
                failed += 1
        with self._cond:
            if self._closed:
                self.dropped_closed += len(lines)
                self.errors += failed
                return
            rec_room = opts.buffer_records - self.buffered_records
            byte_room = opts.buffer_bytes - self.buffered_bytes
            taken = 0
            size = 0
            for line in lines[:rec_room]:
                if size + len(line) > byte_room:
                    break
                size += len(line)
                taken += 1
            if taken:
                self._chunks.append((b"".join(lines[:taken]), taken))
                self.buffered_records += taken
                self.buffered_bytes += size
                self._cond.notify_all()
            self.errors += failed
            self.dropped_full += len(records) - taken - failed

    def wait_for_room(self, records: int, timeout: float) -> bool:
        """Until ``records`` more fit and at least half the byte budget is free (a batch is
        formatted only in ``report``), or the buffer is empty; ``True`` once closed (``report``
        counts what it refuses)."""
        opts = self.options

        def room() -> bool:
            if self._closed or not self.buffered_records:
                return True
            return (
                self.buffered_records + records <= opts.buffer_records
                and self.buffered_bytes <= opts.buffer_bytes // 2
            )

        with self._cond:
            return self._cond.wait_for(room, max(timeout, 0.0))

    def _record_room(self) -> int | None:
        """Free record slots in the buffer; ``None`` once closed."""
        with self._cond:
            return None if self._closed else self.options.buffer_records - self.buffered_records

    def flush(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._chunks and not self._in_flight, max(timeout, 0.0)
            )

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._thread is not None:
            self.flush(timeout)
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self.dropped_closed += self.buffered_records
            self._chunks.clear()
            self.buffered_records = 0
            self.buffered_bytes = 0
            if self._in_flight:
                # the writer is stuck in write(): count its records now, not when it returns
                self._abandoned = True
                self.dropped_closed += self._in_flight
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
            if self._thread.is_alive():
                return  # a blocked write holds the stream; the daemon thread dies with us
        if self._owns_stream:
            self._stream.close()

    def stats(self) -> dict[str, int]:
        return {
            "records": self.written_records,
            "bytes": self.written_bytes,
            "errors": self.errors,
            "write_failures": self.write_failures,
            "dropped.buffer_full": self.dropped_full,
            "dropped.closed": self.dropped_closed,
            "buffer_records": self.buffered_records,
            "buffer_bytes": self.buffered_bytes,
        }

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        stream = self._stream
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._chunks or self._stopping)
                if not self._chunks:
                    return
                chunks = list(self._chunks)
                self._chunks.clear()
                count = sum(n for _, n in chunks)
                data = b"".join(c for c, _ in chunks)
                self.buffered_records -= count
                self.buffered_bytes -= len(data)
                self._in_flight = count
            error = _write_all(stream, data)
            with self._cond:
                if not self._abandoned:
                    if error is None:
                        self.written_records += count
                        self.written_bytes += len(data)
                    else:
                        self.errors += count
                        self.write_failures += 1
                self._in_flight = 0
                self._cond.notify_all()
            self._log_write_error(error)

    def _log_write_error(self, error: str | None) -> None:
        """Name a failing output once (not per write); again only after it worked in between."""
        if error is None or error == self._failing:
            self._failing = error
            return
        self._failing = error
        out = self.options.output
        log.warning(
            "console reporter: cannot write to %s: %s; its records are lost and counted as "
            "errors (logged again only if the output recovers and fails again)",
            _STD_STREAMS.get(out, out), error,
        )  # fmt: skip


def _write_all(stream: Any, data: bytes) -> str | None:
    """Write all of ``data`` (raw streams may write part of it); the error, or ``None``."""
    view = memoryview(data)
    try:
        while view:
            n = stream.write(view)
            if n is None:  # a non-blocking raw stream that would block: the buffer absorbs it
                time.sleep(0.01)
                continue
            view = view[n:]
        stream.flush()
    except OSError as exc:  # EPIPE, ENOSPC
        return exc.strerror or str(exc)
    except ValueError as exc:  # a stream closed under us
        return str(exc)
    return None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
