"""Entry point of the ``console`` reporter (group ``otus.plugins``)."""

from __future__ import annotations

from collections.abc import Iterable

import otus
from otus import PluginContext, Reporter, ReporterSpec
from otus_reporter_console.options import ConsoleOptions


def _make(options: ConsoleOptions, context: PluginContext) -> Reporter:
    from otus_reporter_console.reporter import ConsoleReporter

    return ConsoleReporter(options, context)


SPEC = ReporterSpec(
    name="console",
    factory=_make,
    options_model=ConsoleOptions,
    summary="Records to stdout or a file as JSON lines or readable text, never blocking",
)


@otus.hookimpl
def otus_reporters() -> Iterable[ReporterSpec]:
    return [SPEC]
