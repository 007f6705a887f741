"""The run loop of one pipeline: raw batch → decode → parse → process → report, then release.

Per batch the loop makes one decoder call, one ``parse`` call per parser that got something,
one call per processor and reporter. A plugin that raises is counted (``errors.<stage>.<name>``),
what it was handed is counted as lost (``lost.<stage>.<name>``), the error is logged once per
type (then at most once a minute), and the pipeline carries on. The raw batch is always
released, right after parsing (parsers copy what they keep; records never point into it).

About once a second of capture time (or of wall time while a live source is idle) the decoder,
the TCP reassembler and every parser get a ``tick``. :meth:`Runner.stop` (any thread, or a
signal handler) ends the loop after the current batch; the end flushes parsers, reassembler and
reporters within a bounded time.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from otus._pipeline.pipeline import DecodedBatchLike, Pipeline
from otus._pipeline.reporter_queue import delivered
from otus._pipeline.stats import PluginCounters
from otus.capture import PACKET_DESC, RawBatch
from otus.errors import OtusError
from otus.parsing import Parser, StreamChunk
from otus.records import Record

log = logging.getLogger("otus.pipeline")

RunStatus = Literal["completed", "stopped", "failed"]

_DESC_SIZE = PACKET_DESC.size


@dataclass(frozen=True)
class RunResult:
    """How a run ended: ``completed`` (source exhausted), ``stopped`` (asked to), ``failed``.

    ``error`` is the one line to show a user (a broken file, a missing interface);
    ``permanent`` is the failing :class:`OtusError`'s ``permanent`` flag (retrying cannot help).
    """

    status: RunStatus
    error: str | None
    snapshot: dict[str, Any]
    permanent: bool = False


class ErrorLog:
    """Logs a plugin's exception the first time per (stage, plugin, type), then once a minute."""

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._seen: dict[tuple[str, str, str], list[float]] = {}  # key -> [last_logged, missed]

    def __call__(self, stage: str, name: str, exc: BaseException) -> None:
        key = (stage, name, type(exc).__name__)
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None:
            self._seen[key] = [now, 0]
            log.error(
                "%s %s raised %s: %s (counted in errors.%s.%s; further ones are rate-limited)",
                stage, name, type(exc).__name__, exc, stage, name, exc_info=exc,
            )  # fmt: skip
        elif now - entry[0] >= self._interval:
            log.error(
                "%s %s raised %s again (%d more since last report): %s",
                stage, name, type(exc).__name__, entry[1] + 1, exc,
            )  # fmt: skip
            entry[0], entry[1] = now, 0
        else:
            entry[1] += 1


def last_ts_ns(batch: RawBatch) -> int:
    """Timestamp of the last packet of a non-empty batch (descs: a buffer or a cffi array)."""
    descs = batch.descs
    try:
        return int(PACKET_DESC.unpack_from(descs, (batch.count - 1) * _DESC_SIZE)[0])
    except TypeError:
        return int(descs[batch.count - 1].ts_ns)


#: Generation-0 threshold of the cyclic garbage collector while a pipeline runs. The hot path
#: allocates many short-lived containers (parsed payload dicts, records) held by a batch; with
#: CPython's default (700) the collector took ~30% of a full SIP parse (docs/sip.md, "Speed").
GC_GEN0_THRESHOLD = 20_000


class _GcTuning:
    """Process-wide GC settings of the run loops: the first loop in saves the threshold and
    freezes, the last one out restores the threshold and unfreezes, so concurrent or nested
    runs (tests, threads) compose."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = gc.get_threshold()

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._saved = gc.get_threshold()
                gc.freeze()
                gc.set_threshold(max(self._saved[0], GC_GEN0_THRESHOLD), *self._saved[1:])
            self._depth += 1

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                gc.set_threshold(*self._saved)
                gc.unfreeze()


_gc_tuning = _GcTuning()


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    """Run-loop GC settings: start-up objects frozen (never scanned again), a higher gen-0
    threshold; restored when the last run loop of the process ends. Whether the host froze
    before cannot be told reliably (CPython 3.12 reports a non-zero freeze count at start-up),
    so an embedding application's own freeze does not survive a run."""
    _gc_tuning.enter()
    try:
        yield
    finally:
        _gc_tuning.exit()


class Runner:
    """Drives one :class:`Pipeline` until its source ends or :meth:`stop` is called."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        tick_interval: float = 1.0,
        flush_timeout: float = 5.0,
        latency_every: int = 16,
        on_tick: Callable[[], None] | None = None,
        duration: float | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.stats = pipeline.stats
        self.flush_timeout = flush_timeout
        self._tick_ns = max(1, int(tick_interval * 1e9))
        self._latency_every = max(1, latency_every)
        self._on_tick = on_tick
        self._on_started = on_started  # the source is open and the reporters started
        self._errors = ErrorLog()
        self._stop = threading.Event()
        self._clock_ns = 0  # capture time: latest packet timestamp seen (advanced when idle)
        self._clock_wall_ns = 0  # wall time when _clock_ns last moved
        self._next_tick_clock = 0
        self._next_tick_wall = 0
        self._duration_ns = int(duration * 1e9) if duration else 0
        self._deadline_wall = 0  # monotonic ns at which the run stops itself (duration)
        self._labels = list(pipeline.labels.items())
        ctx = pipeline.context
        self._stamp = (ctx.task_id, ctx.agent_id, ctx.pipeline_id)

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """End the loop after the current batch. Safe from any thread or a signal handler."""
        self._stop.set()
        for queue in self.pipeline.queues:
            queue.stop_waiting()  # a loop held by a full reporter queue (a file source) goes on
        with contextlib.suppress(Exception):
            self.pipeline.capturer.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> dict[str, Any]:
        return self.pipeline.snapshot()

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Open, run until the end or :meth:`stop`, then flush. Never raises for plugin errors."""
        p = self.pipeline
        try:
            p.capturer.open()
        except OtusError as exc:
            self._close_all(capturer_opened=False)
            return self._result("failed", str(exc), exc.permanent)
        except Exception as exc:
            self._close_all(capturer_opened=False)
            return self._result("failed", f"capturer {p.capturer_name!r} failed to open: {exc}")
        started = 0
        try:
            for slot in p.reporters:
                slot.plugin.start()
                started += 1
        except Exception as exc:
            name = p.reporters[started].name
            self._close_all(capturer_opened=True, reporters=p.reporters[:started])
            permanent = isinstance(exc, OtusError) and exc.permanent
            return self._result("failed", f"reporter {name!r} failed to start: {exc}", permanent)
        if self._on_started is not None:
            self._on_started()

        now = time.monotonic_ns()
        self._next_tick_wall = now + self._tick_ns
        if self._duration_ns:
            self._deadline_wall = now + self._duration_ns
        self._clock_wall_ns = now
        error: str | None = None
        batches = p.capturer.batches()
        try:
            if not self._stop.is_set():
                with tuned_gc():
                    for batch in batches:
                        self._on_batch(batch)
                        if self._stop.is_set():
                            break
        except OtusError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("capturer %s failed", p.capturer_name)
            error = f"capturer {p.capturer_name!r} failed: {type(exc).__name__}: {exc}"
        except BaseException:
            # KeyboardInterrupt (second Ctrl-C) or SystemExit: leave at once, no flushing.
            with contextlib.suppress(Exception):
                p.capturer.close()
            raise
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        with contextlib.suppress(Exception):
            p.capturer.close()
        self._finish()
        if error is not None:
            return self._result("failed", error)
        return self._result("stopped" if self._stop.is_set() else "completed", None)

    def _result(self, status: RunStatus, error: str | None, permanent: bool = False) -> RunResult:
        return RunResult(status, error, self.pipeline.snapshot(), permanent)

    def _on_batch(self, batch: RawBatch) -> None:
        st = self.stats
        n = batch.count
        if n <= 0:
            st.empty_batches += 1
            self._release(batch)
            self._idle()
            return
        st.batches += 1
        st.packets += n
        sample = st.batches % self._latency_every == 1 or self._latency_every == 1
        t0 = time.perf_counter_ns() if sample else 0
        try:
            ts = last_ts_ns(batch)
            decoded = self._decode(batch, n)
            t1 = time.perf_counter_ns() if sample else 0
            records = self._parse(decoded) if decoded is not None else []
            del decoded
        finally:
            self._release(batch)
        if sample:
            t2 = time.perf_counter_ns()
            st.latency["decode"].add(t1 - t0)
            st.latency["parse"].add(t2 - t1)
        if records:
            self._deliver(records, sample)
        if sample:
            st.latency["batch"].add(time.perf_counter_ns() - t0)

        now_wall = time.monotonic_ns()
        if ts > self._clock_ns:
            if self._clock_ns == 0:
                self._next_tick_clock = ts + self._tick_ns
            self._clock_ns = ts
            self._clock_wall_ns = now_wall
        if self._clock_ns >= self._next_tick_clock or now_wall >= self._next_tick_wall:
            self._tick(now_wall)

    def _idle(self) -> None:
        """A live source woke up with nothing: let capture time follow the wall clock."""
        now_wall = time.monotonic_ns()
        if now_wall < self._next_tick_wall:
            return
        if self._clock_ns:
            self._clock_ns += now_wall - self._clock_wall_ns
            self._clock_wall_ns = now_wall
        self._tick(now_wall)

    def _release(self, batch: RawBatch) -> None:
        try:
            batch.release()
        except Exception as exc:
            self.stats.release_errors += 1
            self._errors("capture", self.pipeline.capturer_name, exc)

    def _failed(self, counters: PluginCounters, exc: Exception, lost: int) -> None:
        counters.errors += 1
        counters.lost += lost
        self._errors(counters.stage, counters.name, exc)

    # -- stages ----------------------------------------------------------------------------------

    def _decode(self, batch: RawBatch, n: int) -> DecodedBatchLike | None:
        try:
            return self.pipeline.decoder.decode(batch)
        except Exception as exc:
            self._failed(self.stats.decoder, exc, n)
            return None

    def _parse(self, decoded: DecodedBatchLike) -> list[Record]:
        out: list[Record] = []
        segments: list[Any] = []
        for slot in self.pipeline.parsers:
            datagrams = decoded.datagrams(slot.index)
            if datagrams:
                c = slot.counters
                c.items_in += len(datagrams)
                try:
                    records = slot.parse(datagrams)
                except Exception as exc:
                    self._failed(c, exc, len(datagrams))
                else:
                    if records:
                        out += self._accept(c, records, len(datagrams))
            if slot.stream:
                segs = decoded.tcp_segments(slot.index)
                if segs:
                    segments += segs
        if segments:
            out += self._reassemble("add", segments)
        return out

    def _reassemble(self, method: str, segments: Sequence[Any] = ()) -> list[Record]:
        """Run the TCP reassembler (``add``/``tick``/``close``) and parse the ready chunks."""
        reassembler = self.pipeline.reassembler
        if reassembler is None:
            self.stats.reassembler.lost += len(segments)
            return []
        try:
            if method == "add":
                ready = reassembler.add(segments)
            elif method == "tick":
                ready = reassembler.tick(self._clock_ns)
            else:
                ready = reassembler.close()
        except Exception as exc:
            self._failed(self.stats.reassembler, exc, len(segments))
            return []
        return self._parse_chunks(ready) if ready else []

    def _parse_chunks(self, ready: Sequence[tuple[int, StreamChunk]]) -> list[Record]:
        by_parser: dict[int, list[StreamChunk]] = {}
        for index, chunk in ready:
            by_parser.setdefault(index, []).append(chunk)
        out: list[Record] = []
        parsers = self.pipeline.parsers
        for index, chunks in by_parser.items():
            slot = parsers[index]
            c = slot.counters
            c.chunks_in += len(chunks)
            try:
                records = slot.parse_stream(chunks)
            except Exception as exc:
                self._failed(c, exc, len(chunks))
                continue
            if records:
                out += self._accept(c, records, len(chunks))
        return out

    def _accept(self, c: PluginCounters, result: Any, lost: int) -> list[Record]:
        """A parser's result, stamped. Anything but a list (a tuple is taken) of records is that
        parser's error, counted against it with ``lost`` items; one foreign item in the list
        costs only itself. Checked once a batch; per item only when stamping failed."""
        if result.__class__ is list:
            records: list[Record] = result
        elif isinstance(result, (list, tuple)):  # a list subclass, a tuple
            records = list(result)
        else:
            what = f"returned {type(result).__name__}, not a list of records"
            self._failed(c, TypeError(what), lost)
            return []
        try:
            self._stamp_records(records)
        except AttributeError:  # an item without the Record slots
            good = [r for r in records if isinstance(r, Record)]
            bad = next(r for r in records if not isinstance(r, Record))
            what = f"returned {type(bad).__name__}, not otus.Record"
            self._failed(c, TypeError(what), len(records) - len(good))
            records = good
            self._stamp_records(records)
        c.records += len(records)
        return records

    def _stamp_records(self, records: list[Record]) -> None:
        task_id, agent_id, pipeline_id = self._stamp
        for r in records:
            r.task_id = task_id
            r.agent_id = agent_id
            r.pipeline_id = pipeline_id
        if self._labels:
            pairs = self._labels
            for r in records:
                r.setdefault_labels(pairs)
        self.stats.records_parsed += len(records)

    def _deliver(self, records: list[Record], sample: bool = False) -> None:
        """Processors in order, then every reporter."""
        st = self.stats
        t0 = time.perf_counter_ns() if sample else 0
        for proc in self.pipeline.processors:
            c = proc.counters
            c.items_in += len(records)
            handed = records
            try:
                records = proc.process(records)
            except Exception as exc:
                self._failed(c, exc, len(handed))
                records = []
            if records.__class__ is not list:
                records = self._listed(c, records, len(handed))
            c.records += len(records)
            if not records:
                break
        t1 = time.perf_counter_ns() if sample else 0
        if records:
            n = len(records)
            st.records_reported += n
            for rep in self.pipeline.reporters:
                c = rep.counters
                c.items_in += n
                try:
                    rep.report(records)
                except Exception as exc:
                    self._failed(c, exc, n)
        if sample:
            st.latency["process"].add(t1 - t0)
            st.latency["report"].add(time.perf_counter_ns() - t1)

    def _listed(self, c: PluginCounters, records: Any, lost: int) -> list[Record]:
        """A processor's result that is not exactly a list: a tuple or a list subclass is taken,
        anything else is its error (the batch handed to it is lost)."""
        if isinstance(records, (list, tuple)):  # a list subclass, a tuple
            return list(records)
        self._failed(c, TypeError(f"returned {type(records).__name__}, not a list"), lost)
        return []

    # -- time ------------------------------------------------------------------------------------

    def _tick(self, now_wall: int) -> None:
        st = self.stats
        st.ticks += 1
        if self._deadline_wall and now_wall >= self._deadline_wall:
            self.stop()
        self._next_tick_wall = now_wall + self._tick_ns
        clock = self._clock_ns
        if clock:
            self._next_tick_clock = clock + self._tick_ns
            try:
                self.pipeline.decoder.tick(clock)
            except Exception as exc:
                st.tick_errors += 1
                self._errors("decode", "decoder", exc)
            out = self._reassemble("tick")
            out += self._from_parsers(lambda parser: parser.tick(clock))
            if out:
                self._deliver(out)
        if self._on_tick is not None:
            try:
                self._on_tick()
            except Exception as exc:
                self._errors("pipeline", "on_tick", exc)

    # -- the end ---------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Flush the reassembler and parsers through the pipeline, then close everything."""
        p = self.pipeline
        out = self._reassemble("close") if p.reassembler is not None else []
        out += self._from_parsers(lambda parser: parser.close())
        if out:
            self._deliver(out)
        self._close_all(capturer_opened=False, reporters=p.reporters)

    def _from_parsers(self, call: Callable[[Parser], list[Record]]) -> list[Record]:
        """Records that ``call`` gets from every parser (``tick``, ``close``); errors counted."""
        out: list[Record] = []
        for slot in self.pipeline.parsers:
            try:
                records = call(slot.plugin)
            except Exception as exc:
                self._failed(slot.counters, exc, 0)
                continue
            if records:
                out += self._accept(slot.counters, records, 0)
        return out

    def _close_all(self, *, capturer_opened: bool, reporters: Sequence[Any] | None = None) -> None:
        p = self.pipeline
        if capturer_opened:
            with contextlib.suppress(Exception):
                p.capturer.close()
        for proc in p.processors:
            try:
                proc.plugin.close()
            except Exception as exc:
                self._failed(proc.counters, exc, 0)
        if reporters:
            self._close_reporters(reporters)

    def _close_reporters(self, reporters: Sequence[Any]) -> None:
        """``flush`` then ``close`` each reporter, all within ``flush_timeout`` seconds in total;
        with a source that can wait (a file), that time starts again whenever a reporter made
        progress (records delivered, batches taken): the end waits for a slow destination
        that is still going, not for a stuck one.

        Runs in a helper thread so that a reporter ignoring its timeout cannot hang the end.
        """
        patient = self.pipeline.pausable and not self._stop.is_set()  # not after a stop
        timeout = self.flush_timeout
        end = [time.monotonic() + timeout]  # the deadline, moved on by progress

        def shut() -> None:
            for slot in reporters:
                mark = _progress(slot.plugin)
                try:
                    while not slot.plugin.flush(
                        max(0.0, min(end[0] - time.monotonic(), _PROGRESS_SLICE))
                        if patient
                        else max(0.0, end[0] - time.monotonic())
                    ):
                        now = _progress(slot.plugin)
                        if patient and now != mark:
                            mark = now
                            end[0] = time.monotonic() + timeout
                        elif time.monotonic() >= end[0] or not patient:
                            break
                    slot.plugin.close(max(0.0, end[0] - time.monotonic()))
                except Exception as exc:
                    self._failed(slot.counters, exc, 0)

        thread = threading.Thread(target=shut, name="otus-reporters-close", daemon=True)
        thread.start()
        thread.join(timeout + 0.5)
        while thread.is_alive() and time.monotonic() < end[0] + 0.5:
            thread.join(0.5)
        if thread.is_alive():
            log.error("reporters did not close within %.1f s; leaving them", self.flush_timeout)


#: How often the end of a run over a file looks whether its reporters still make progress.
_PROGRESS_SLICE = 0.5


def _progress(reporter: Any) -> tuple[int, int]:
    """What a reporter has done so far: records it delivered and records taken off its queue."""
    queue = getattr(reporter, "queue", None)
    return delivered(reporter), int(getattr(queue, "got_items", 0))
