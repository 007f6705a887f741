"""Otus: a passive SIP and network capture agent built from plugins.

This module is the public facade for plugin authors: everything a capturer, parser, processor
or reporter needs, and the metric specs a plugin declares, is importable from ``otus``.
Everything under ``otus._…`` is private.
"""

from __future__ import annotations

from otus._config.types import ByteSize, Duration
from otus.capture import Capturer, RawBatch, RawBatchBuilder
from otus.context import PluginContext
from otus.errors import (
    CaptureError,
    ConfigError,
    ControlError,
    OtusError,
    PipelineError,
    PluginError,
)
from otus.hookspecs import hookimpl
from otus.metrics import (
    HistogramSample,
    MetricSample,
    MetricSpec,
    histogram_sample,
    prefixed,
)
from otus.parsing import Datagram, Interest, Parser, StreamChunk
from otus.processing import Processor
from otus.records import Record, record_to_dict
from otus.reporting import Reporter
from otus.specs import CapturerSpec, ParserSpec, PluginSpec, ProcessorSpec, ReporterSpec

__version__ = "0.1.0"

__all__ = [
    "ByteSize",
    "Duration",
    "CaptureError",
    "Capturer",
    "CapturerSpec",
    "ConfigError",
    "ControlError",
    "Datagram",
    "HistogramSample",
    "Interest",
    "MetricSample",
    "MetricSpec",
    "OtusError",
    "Parser",
    "ParserSpec",
    "PipelineError",
    "PluginContext",
    "PluginError",
    "PluginSpec",
    "Processor",
    "ProcessorSpec",
    "RawBatch",
    "RawBatchBuilder",
    "Record",
    "Reporter",
    "ReporterSpec",
    "StreamChunk",
    "__version__",
    "hookimpl",
    "histogram_sample",
    "prefixed",
    "record_to_dict",
]
