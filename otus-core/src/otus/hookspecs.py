"""The hook specifications of Otus, grouped by phase (design §2).

Registration hooks are called once at start-up; lifecycle hooks on task events. None of them is
ever called per packet. Hooks evolve by adding optional arguments, never by changing meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from otus.metrics import MetricSpec
from otus.specs import CapturerSpec, ParserSpec, ProcessorSpec, ReporterSpec

PROJECT = "otus"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# -- registration -------------------------------------------------------------------------------


@hookspec
def otus_capturers() -> Iterable[CapturerSpec]:  # type: ignore[empty-body]
    """Return the capturers this plugin provides (live interfaces, files, sockets)."""


@hookspec
def otus_parsers() -> Iterable[ParserSpec]:  # type: ignore[empty-body]
    """Return the parsers this plugin provides."""


@hookspec
def otus_processors() -> Iterable[ProcessorSpec]:  # type: ignore[empty-body]
    """Return the record processors this plugin provides."""


@hookspec
def otus_reporters() -> Iterable[ReporterSpec]:  # type: ignore[empty-body]
    """Return the reporters this plugin provides."""


@hookspec
def otus_metrics() -> Iterable[MetricSpec]:  # type: ignore[empty-body]
    """Return the Prometheus metric families this plugin derives from its statistics.

    Each spec's ``collect(counters, gauges)`` runs at scrape time, once per task, with the
    task's counters and gauges summed over its workers.
    """


# -- task lifecycle (called in the process that owns the task, never per packet) -----------------


@hookspec
def otus_task_started(task_id: str, config: Mapping[str, Any]) -> None:
    """A task has started; ``config`` is its validated configuration as plain data."""


@hookspec
def otus_task_stopped(task_id: str, status: str, reason: str | None) -> None:
    """A task has stopped (``status`` ``stopped`` or ``failed``, with ``reason`` when failed)."""
