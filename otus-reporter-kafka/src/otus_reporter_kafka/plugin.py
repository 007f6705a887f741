"""Entry point of the ``kafka`` reporter (group ``otus.plugins``)."""

from __future__ import annotations

from collections.abc import Iterable

import otus
from otus import PluginContext, Reporter, ReporterSpec
from otus_reporter_kafka.options import KafkaReporterOptions


def _make(options: KafkaReporterOptions, context: PluginContext) -> Reporter:
    from otus_reporter_kafka.fallback import build_fallback
    from otus_reporter_kafka.reporter import KafkaReporter

    fallback = build_fallback(options.fallback, context) if options.fallback else None
    return KafkaReporter(options, context, fallback=fallback)


SPEC = ReporterSpec(
    name="kafka",
    factory=_make,
    options_model=KafkaReporterOptions,
    summary="Records to Kafka in the Go Otus wire format, batched, buffered, never blocking",
)


@otus.hookimpl
def otus_reporters() -> Iterable[ReporterSpec]:
    return [SPEC]
