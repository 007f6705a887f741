"""A built pipeline: the plugin instances of one task, with their hot-path methods bound once.

:func:`otus._pipeline.builder.build_pipeline` makes it; :class:`otus._pipeline.runner.Runner`
drives it. The decoder and TCP reassembler are described by the small protocols below (the
run loop needs nothing else from them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from otus._logging.setup import loki_stats
from otus._pipeline.stats import PipelineStats, PluginCounters, StatsSource
from otus.capture import Capturer, RawBatch
from otus.context import PluginContext
from otus.parsing import Datagram, Interest, Parser, StreamChunk
from otus.processing import Processor
from otus.queues import BoundedQueue
from otus.records import Record
from otus.reporting import Reporter


class DecodedBatchLike(Protocol):
    """What the run loop reads from one decoded batch (``otus._decode.decoder.DecodedBatch``)."""

    @property
    def count(self) -> int: ...

    def datagrams(self, parser_index: int) -> list[Datagram]: ...

    def tcp_segments(self, parser_index: int) -> list[Any]: ...


class DecoderLike(Protocol):
    """``otus._decode.decoder.Decoder`` as the run loop uses it."""

    def decode(self, batch: RawBatch) -> DecodedBatchLike: ...

    def tick(self, now_ns: int) -> Any: ...

    def stats(self) -> dict[str, int]: ...


class ReassemblerLike(Protocol):
    """``otus._reassembly.tcp.TcpReassembler`` as the run loop uses it.

    Each method returns the stream chunks that became ready, each tagged with the index of the
    parser that wants its flow: ``(parser_index, chunk)``.
    """

    def add(self, segments: Sequence[Any]) -> Sequence[tuple[int, StreamChunk]]: ...

    def tick(self, now_ns: int) -> Sequence[tuple[int, StreamChunk]]: ...

    def close(self) -> Sequence[tuple[int, StreamChunk]]: ...

    def stats(self) -> dict[str, int]: ...


@dataclass(eq=False)
class ParserSlot:
    """One parser of the pipeline, its interest and bound methods."""

    index: int  # position in the task's parser list = interest index in the decoder
    name: str  # unique within the pipeline (``sip``, ``sip#2``)
    plugin: Parser
    interest: Interest
    counters: PluginCounters
    parse: Callable[[Sequence[Datagram]], list[Record]] = field(init=False)
    parse_stream: Callable[[Sequence[StreamChunk]], list[Record]] = field(init=False)

    def __post_init__(self) -> None:
        self.parse = self.plugin.parse
        self.parse_stream = self.plugin.parse_stream

    @property
    def stream(self) -> bool:
        return self.interest.tcp_stream and "tcp" in self.interest.transports


@dataclass(eq=False)
class ProcessorSlot:
    name: str
    plugin: Processor
    counters: PluginCounters
    process: Callable[[list[Record]], list[Record]] = field(init=False)

    def __post_init__(self) -> None:
        self.process = self.plugin.process


@dataclass(eq=False)
class ReporterSlot:
    name: str
    plugin: Reporter
    counters: PluginCounters
    report: Callable[[Sequence[Record]], None] = field(init=False)

    def __post_init__(self) -> None:
        self.report = self.plugin.report


@dataclass(eq=False)
class Pipeline:
    """Everything one worker runs: capture → decode → reassemble → parse → process → report."""

    context: PluginContext
    capturer_name: str
    capturer: Capturer
    decoder: DecoderLike
    reassembler: ReassemblerLike | None
    parsers: list[ParserSlot]
    processors: list[ProcessorSlot]
    reporters: list[ReporterSlot]
    stats: PipelineStats
    #: The task's ``labels``, added to every record (a parser's own label of that name wins).
    labels: dict[str, str] = field(default_factory=dict)
    #: Queues owned by the pipeline or its plugins, shown in statistics as ``queue.<stage>``.
    queues: list[BoundedQueue[Any]] = field(default_factory=list)
    #: The source can wait (``Capturer.pausable``): full reporters hold it instead of dropping,
    #: and the end waits for reporters while they make progress.
    pausable: bool = False

    def stats_sources(self) -> list[StatsSource]:
        """``(prefix, stats)`` of every component, in data-flow order."""
        sources: list[StatsSource] = [
            ("capture", self.capturer.stats),
            ("decode", self.decoder.stats),
        ]
        if self.reassembler is not None:
            sources.append(("reassembly.tcp", self.reassembler.stats))
        sources += [(f"parse.{s.name}", s.plugin.stats) for s in self.parsers]
        sources += [(f"process.{s.name}", s.plugin.stats) for s in self.processors]
        sources += [(f"report.{s.name}", s.plugin.stats) for s in self.reporters]
        sources += [(f"queue.{q.stage}", q.stats) for q in self.queues]
        sources.append(("log.loki", loki_stats))  # this process's Loki output, if any
        return sources

    def snapshot(self) -> dict[str, Any]:
        """The statistics snapshot of this pipeline (see ``docs/pipeline.md``)."""
        return self.stats.snapshot(self.stats_sources())
