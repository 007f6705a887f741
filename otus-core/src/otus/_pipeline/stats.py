"""The pipeline's counters: plain ints bumped on the hot path, turned into one snapshot on demand.

Nothing here is called per packet. The run loop adds batch-sized numbers to slotted attributes;
:meth:`PipelineStats.snapshot` gathers them with every component's ``stats()`` into one
JSON-serialisable dict of ints with stable dotted key names (documented in ``docs/pipeline.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: Upper bounds (nanoseconds) of the per-batch latency histogram: 10 µs … 1 s, then +Inf.
LATENCY_BOUNDS_NS: tuple[int, ...] = (
    10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000,
)  # fmt: skip

#: Stages whose per-batch latency is sampled.
LATENCY_STAGES: tuple[str, ...] = ("decode", "parse", "process", "report", "batch")

#: Plugin ``stats()`` keys that are levels, not running totals: their last dotted component is
#: one of these, starts with ``active``/``buffer``/``current``/``held`` or ends with ``_active``/
#: ``_memory``. They go to ``gauges`` (see docs/pipeline.md, "Naming statistics").
GAUGE_NAMES = frozenset({"depth", "capacity", "memory"})
GAUGE_PREFIXES = ("active", "buffer", "current", "held")
GAUGE_SUFFIXES = ("_active", "_memory")

StatsSource = tuple[str, Callable[[], dict[str, int]]]


def is_gauge(key: str) -> bool:
    """Whether a plugin statistic named ``key`` is a level (summed over live workers only)."""
    last = key.rsplit(".", 1)[-1]
    return last in GAUGE_NAMES or last.startswith(GAUGE_PREFIXES) or last.endswith(GAUGE_SUFFIXES)


class PluginCounters:
    """What the pipeline itself counts about one plugin instance.

    ``items_in``: datagrams (parsers) or records (processors, reporters) handed to it.
    ``chunks_in``: stream chunks (stream parsers). ``records``: records it returned.
    ``errors``: exceptions it raised. ``lost``: items lost because of those exceptions.
    """

    __slots__ = ("chunks_in", "errors", "items_in", "lost", "name", "records", "stage")

    def __init__(self, stage: str, name: str) -> None:
        self.stage = stage
        self.name = name
        self.items_in = 0
        self.chunks_in = 0
        self.records = 0
        self.errors = 0
        self.lost = 0


class LatencyStat:
    """A small fixed-bucket histogram of sampled per-batch stage durations."""

    __slots__ = ("buckets", "count", "max_ns", "sum_ns")

    def __init__(self) -> None:
        self.count = 0
        self.sum_ns = 0
        self.max_ns = 0
        self.buckets = [0] * len(LATENCY_BOUNDS_NS)

    def add(self, ns: int) -> None:
        self.count += 1
        self.sum_ns += ns
        self.max_ns = max(self.max_ns, ns)
        for i, bound in enumerate(LATENCY_BOUNDS_NS):
            if ns <= bound:
                self.buckets[i] += 1
                break


class PipelineStats:
    """Every number the run loop keeps, plus the snapshot that merges in component stats."""

    __slots__ = (
        "batches",
        "decoder",
        "empty_batches",
        "latency",
        "packets",
        "parsers",
        "processors",
        "reassembler",
        "records_parsed",
        "records_reported",
        "release_errors",
        "reporters",
        "stats_errors",
        "tick_errors",
        "ticks",
    )

    def __init__(self) -> None:
        self.batches = 0  # non-empty raw batches taken from the capturer
        self.empty_batches = 0  # idle wake-ups of a live capturer (count == 0)
        self.packets = 0  # packets in those batches
        self.ticks = 0
        self.records_parsed = 0  # records out of all parsers (parse, parse_stream, tick, close)
        self.records_reported = 0  # records handed to the reporters (after all processors)
        self.release_errors = 0  # a capturer's release callback raised
        self.tick_errors = 0  # decoder/reassembler tick raised
        self.stats_errors = 0  # a component's stats() raised while snapshotting
        self.decoder = PluginCounters("decode", "decoder")  # lost: packets
        self.reassembler = PluginCounters("reassembly", "tcp")  # lost: segments / chunks
        self.parsers: list[PluginCounters] = []
        self.processors: list[PluginCounters] = []
        self.reporters: list[PluginCounters] = []
        self.latency = {stage: LatencyStat() for stage in LATENCY_STAGES}

    def plugin_counters(self) -> Iterable[PluginCounters]:
        yield self.decoder
        yield self.reassembler
        yield from self.parsers
        yield from self.processors
        yield from self.reporters

    def own_counters(self) -> dict[str, int]:
        """The run loop's own counters (no component ``stats()`` involved; cheap)."""
        out = {
            "capture.batches": self.batches,
            "capture.empty_batches": self.empty_batches,
            "capture.packets": self.packets,
            "pipeline.ticks": self.ticks,
            "records.parsed": self.records_parsed,
            "records.reported": self.records_reported,
            "errors.capture.release": self.release_errors,
            "errors.tick": self.tick_errors,
            "errors.stats": self.stats_errors,
        }
        for c in self.parsers:
            out[f"parse.{c.name}.in"] = c.items_in
            out[f"parse.{c.name}.chunks"] = c.chunks_in
            out[f"parse.{c.name}.records"] = c.records
        for c in self.processors:
            out[f"process.{c.name}.in"] = c.items_in
            out[f"process.{c.name}.out"] = c.records
        for c in self.reporters:
            out[f"report.{c.name}.in"] = c.items_in
        for c in self.plugin_counters():
            out[f"errors.{c.stage}.{c.name}"] = c.errors
            out[f"lost.{c.stage}.{c.name}"] = c.lost
        for stage, lat in self.latency.items():
            out[f"latency.{stage}.count"] = lat.count
            out[f"latency.{stage}.sum_ns"] = lat.sum_ns
            out[f"latency.{stage}.max_ns"] = lat.max_ns
            cumulative = 0
            for bound, n in zip(LATENCY_BOUNDS_NS, lat.buckets, strict=True):
                cumulative += n
                out[f"latency.{stage}.le_{bound}"] = cumulative
        return out

    def snapshot(self, sources: Iterable[StatsSource]) -> dict[str, Any]:
        """``{"counters": {...}, "gauges": {...}}``: every value an int, keys stable.

        ``sources`` are ``(prefix, stats_function)`` pairs (``("parse.sip", parser.stats)``);
        their keys appear as ``<prefix>.<key>``. A source whose ``stats()`` raises is skipped
        and counted in ``errors.stats``.
        """
        counters: dict[str, int] = {}
        gauges: dict[str, int] = {}
        for prefix, fn in sources:
            try:
                values = fn()
                items = [(str(k), int(v)) for k, v in values.items()]
            except Exception:
                self.stats_errors += 1
                continue
            for key, value in items:
                (gauges if is_gauge(key) else counters)[f"{prefix}.{key}"] = value
        counters.update(self.own_counters())
        return {"counters": counters, "gauges": gauges}
