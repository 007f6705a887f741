"""Entry point of the ``filter`` processor (group ``otus.plugins``)."""

from __future__ import annotations

from collections.abc import Iterable

import otus
from otus import MetricSpec, PluginContext, Processor, ProcessorSpec
from otus_processor_filter import metrics
from otus_processor_filter.options import FilterOptions


def _make(options: FilterOptions, context: PluginContext) -> Processor:
    from otus_processor_filter.processor import FilterProcessor

    return FilterProcessor(options, context)


SPEC = ProcessorSpec(
    name="filter",
    factory=_make,
    options_model=FilterOptions,
    summary="Keep, drop and label records by rules on labels, addresses, ports and protocol",
)


@otus.hookimpl
def otus_processors() -> Iterable[ProcessorSpec]:
    return [SPEC]


@otus.hookimpl
def otus_metrics() -> Iterable[MetricSpec]:
    return list(metrics.METRICS)
