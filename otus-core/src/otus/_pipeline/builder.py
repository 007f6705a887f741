"""Task config + plugin specs → a :class:`Pipeline` (plugin options are validated before this).

Every plugin is made by ``spec.factory(options, context)`` exactly once; each parser is asked
for its :class:`otus.Interest` once; the decoder is told all interests so it classifies in C.
Hot-path methods are bound here, so the run loop never goes through pluggy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from otus._pipeline.pipeline import (
    DecoderLike,
    ParserSlot,
    Pipeline,
    ProcessorSlot,
    ReassemblerLike,
    ReporterSlot,
)
from otus._pipeline.reporter_queue import QueuedReporter
from otus._pipeline.stats import PipelineStats, PluginCounters
from otus._plugins.discovery import provider_of
from otus.capture import Capturer
from otus.context import PluginContext
from otus.errors import OtusError, PipelineError
from otus.parsing import Interest, Parser
from otus.processing import Processor
from otus.queues import BoundedQueue
from otus.records import Record
from otus.reporting import Reporter

if TYPE_CHECKING:
    from otus._config.validate import ValidatedTask

log = logging.getLogger("otus.pipeline")


def unique_names(names: Iterable[str]) -> list[str]:
    """``["sip", "filter", "filter"]`` → ``["sip", "filter", "filter#2"]`` (stable stats keys)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _make(kind: str, name: str, factory: Callable[[Any, PluginContext], Any], options: Any,
          context: PluginContext, expected: type) -> Any:  # fmt: skip
    """``factory(options, context)``, which must give an ``expected``; a plugin's failure is a
    :class:`PipelineError` naming the plugin and the distribution it comes from."""
    try:
        made = factory(options, context)
    except OtusError:
        raise
    except Exception as exc:
        raise PipelineError(
            f"{kind} {name!r} failed to start: {type(exc).__name__}: {exc} "
            f"(factory of {provider_of(factory)})"
        ) from exc
    if not isinstance(made, expected):
        raise PipelineError(
            f"{kind} {name!r} failed to start: its factory returned {type(made).__name__}, "
            f"not an otus.{expected.__name__} (factory of {provider_of(factory)})"
        )
    return made


def build_pipeline(task: ValidatedTask, context: PluginContext) -> Pipeline:
    """Instantiate the plugins of ``task`` for one pipeline; raise :class:`PipelineError`."""
    stats = PipelineStats()
    processors: list[ProcessorSlot] = []
    try:
        cap_spec, cap_options = task.capture
        capturer: Capturer = _make(
            "capturer", cap_spec.name, cap_spec.factory, cap_options, context, Capturer
        )

        parsers: list[ParserSlot] = []
        names = unique_names(spec.name for spec, _ in task.parsers)
        for index, ((p_spec, options), name) in enumerate(zip(task.parsers, names, strict=True)):
            parser: Parser = _make("parser", p_spec.name, p_spec.factory, options, context, Parser)
            interest = _interest_of(name, parser)
            counters = PluginCounters("parse", name)
            stats.parsers.append(counters)
            parsers.append(ParserSlot(index, name, parser, interest, counters))

        names = unique_names(spec.name for spec, _ in task.processors)
        for (x_spec, options), name in zip(task.processors, names, strict=True):
            processor: Processor = _make(
                "processor", x_spec.name, x_spec.factory, options, context, Processor
            )
            counters = PluginCounters("process", name)
            stats.processors.append(counters)
            processors.append(ProcessorSlot(name, processor, counters))

        reporters: list[ReporterSlot] = []
        queues: list[BoundedQueue[Any]] = []
        backpressure = context.settings.get("backpressure", {})
        names = unique_names(spec.name for spec, _ in task.reporters)
        # A source that can wait (a file) is held while a reporter catches up: nothing dropped.
        pausable = _pausable(capturer)
        for (r_spec, options), name in zip(task.reporters, names, strict=True):
            reporter: Reporter = _make(
                "reporter", r_spec.name, r_spec.factory, options, context, Reporter
            )
            # Every reporter sits behind a bounded queue on its own thread (reporter_queue.py).
            queue: BoundedQueue[list[Record]] = BoundedQueue(
                int(backpressure.get("reporter_queue", 256)),
                "block" if pausable else backpressure.get("policy", "drop_newest"),
                block_timeout=None,
                stage=f"report.{name}",
            )
            queues.append(queue)
            counters = PluginCounters("report", name)
            stats.reporters.append(counters)
            queued = QueuedReporter(reporter, queue, counters, pausable=pausable)
            reporters.append(ReporterSlot(name, queued, counters))

        decoder = _make_decoder(task, [slot.interest for slot in parsers])
        reassembler = _make_reassembler(task, parsers)
    except BaseException:
        for slot in processors:
            with contextlib.suppress(Exception):
                slot.plugin.close()
        raise
    return Pipeline(
        context=context,
        capturer_name=cap_spec.name,
        capturer=capturer,
        decoder=decoder,
        reassembler=reassembler,
        parsers=parsers,
        processors=processors,
        reporters=reporters,
        stats=stats,
        labels=dict(task.config.labels),
        queues=queues,
        pausable=pausable,
    )


def _pausable(capturer: Capturer) -> bool:
    try:
        return bool(capturer.pausable)
    except Exception:  # a third-party capturer's property failing: treat it as live
        log.warning("capturer %r: pausable failed; its reporters drop when full", capturer)
        return False


def _interest_of(name: str, parser: Parser) -> Interest:
    try:
        interest = parser.interest()
    except Exception as exc:
        raise PipelineError(f"parser {name!r}: interest() failed: {exc}") from exc
    if not isinstance(interest, Interest):
        raise PipelineError(f"parser {name!r}: interest() must return otus.Interest")
    return interest


def _make_decoder(task: ValidatedTask, interests: list[Interest]) -> DecoderLike:
    from otus._decode.decoder import Decoder

    try:
        decoder: DecoderLike = Decoder(task.config.decoder, interests)
    except OtusError:
        raise
    except Exception as exc:
        raise PipelineError(f"decoder failed to start: {type(exc).__name__}: {exc}") from exc
    return decoder


def _make_reassembler(task: ValidatedTask, parsers: list[ParserSlot]) -> ReassemblerLike | None:
    """A TCP reassembler only when some parser wants TCP streams (and it is enabled)."""
    options = task.config.decoder.tcp_reassembly
    if not options.enabled or not any(slot.stream for slot in parsers):
        return None
    from otus._reassembly.tcp import TcpReassembler

    reassembler: ReassemblerLike = TcpReassembler(options)
    return reassembler
