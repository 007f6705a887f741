"""Turning the counters of a task (docs/pipeline.md keys) into Prometheus metric families.

This is the one place that knows both the core snapshot keys and the core metric names (listed
in :mod:`otus._metrics.catalog`); families that plugins declare (:class:`otus.MetricSpec`) are
built here too from the same per-task sums, by :class:`PluginFamilies`. Label values are
bounded: task ids, worker indexes, stage and reason names chosen by code, plugin names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from otus._daemon.states import TaskState
from otus._metrics.catalog import METRICS
from otus.metrics import HistogramSample, MetricSample, MetricSpec, histogram_sample, prefixed

__all__ = ["METRICS", "PluginFamilies", "task_families"]

log = logging.getLogger(__name__)

_CLASSES = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
            "histogram": HistogramMetricFamily}  # fmt: skip


def _new_family(name: str, kind: str, help_text: str, labels: Sequence[str]) -> Any:
    short = name.removesuffix("_total") if kind == "counter" else name
    return _CLASSES[kind](short, help_text, labels=list(labels))


def _family(name: str) -> Any:
    kind, help_text, labels = METRICS[name]
    return _new_family(name, kind, help_text, labels)


def _add_histogram(fam: Any, labels: list[str], sample: HistogramSample | None) -> None:
    if sample is not None:
        le = [(_fmt(bound), value) for bound, value in sample.buckets]
        fam.add_metric(labels, [*le, ("+Inf", sample.count)], sample.sum)


def _fmt(x: float) -> str:
    return repr(float(x))


def task_families(
    tasks: Iterable[tuple[str, str, str, dict[int, dict[str, Any]], int]],
    plugins: PluginFamilies | None = None,
    own_loki: Mapping[str, int] | None = None,
) -> list[Metric]:
    """Families for ``(task_id, state, interface, per-worker counters, restarts)`` tuples.

    The core families, then those of ``plugins`` fed with the same per-task sums; without
    ``plugins``, the metric specs of the installed plugins (loaded now: a caller that scrapes
    repeatedly keeps one :class:`PluginFamilies`, which also keeps the error counts).
    ``own_loki``: the calling process's Loki output counts (the daemon's own log lines).
    """
    if plugins is None:
        plugins = PluginFamilies.installed()
    fams = {name: _family(name) for name in METRICS if name != "otus_build_info"}
    sums: list[tuple[str, dict[str, int], dict[str, int]]] = []
    if own_loki:
        _loki(fams, "", own_loki, own_loki)
    for task_id, state, interface, per_worker, restarts in tasks:
        for s in TaskState:
            fams["otus_task_status"].add_metric([task_id, s.value], 1.0 if s.value == state else 0)
        fams["otus_worker_restarts_total"].add_metric([task_id], restarts)
        totals: dict[str, int] = {}
        gauges: dict[str, int] = {}
        for worker, snap in per_worker.items():
            c = snap.get("counters", {})
            for k, v in c.items():
                totals[k] = totals.get(k, 0) + v
            for k, v in snap.get("gauges", {}).items():
                gauges[k] = gauges.get(k, 0) + v
            for stage, value in _stage_packets(c):
                fams["otus_pipeline_packets_total"].add_metric([task_id, str(worker), stage], value)
        _task_counters(fams, task_id, interface, totals, gauges)
        sums.append((task_id, totals, gauges))
    plugin_fams = plugins.families(sums)
    for name, errors in plugins.errors().items():
        fams["otus_plugin_metric_errors_total"].add_metric([name], errors)
    return [*fams.values(), *plugin_fams]


class PluginFamilies:
    """The families of plugin-declared :class:`otus.MetricSpec` s, built at scrape time.

    A ``collect`` that raises, or returns samples of the wrong shape, leaves its family out of
    that scrape (never the others, never the whole endpoint); each such scrape is counted per
    family (``otus_plugin_metric_errors_total``) and the first one is logged as a warning.
    Scrapes may run concurrently (one thread per HTTP request), hence the lock.
    """

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self.specs = sorted(specs, key=lambda spec: spec.name)
        self._errors = dict.fromkeys((spec.name for spec in self.specs), 0)
        self._lock = threading.Lock()

    @classmethod
    def installed(cls) -> PluginFamilies:
        """For the metric specs of the plugins installed in this interpreter."""
        from otus._plugins.registry import load_registry

        return cls(load_registry(strict=False).metrics())

    def errors(self) -> dict[str, int]:
        """Scrapes that left each family out, by metric name."""
        with self._lock:
            return dict(self._errors)

    def families(self, sums: Sequence[tuple[str, dict[str, int], dict[str, int]]]) -> list[Metric]:
        """One family per spec that collected cleanly, from ``(task_id, counters, gauges)``."""
        views = [(t, MappingProxyType(c), MappingProxyType(g)) for t, c, g in sums]
        out: list[Metric] = []
        for spec in self.specs:
            fam = _new_family(spec.name, spec.kind, spec.help, ("task", *spec.labels))
            try:
                for task_id, counters, gauges in views:
                    for sample in spec.collect(counters, gauges):
                        _add_sample(fam, spec, task_id, sample)
            except Exception as err:  # a plugin's bug must not break /metrics
                self._failed(spec, err)
                continue
            out.append(fam)
        return out

    def _failed(self, spec: MetricSpec, err: Exception) -> None:
        with self._lock:
            self._errors[spec.name] += 1
            first = self._errors[spec.name] == 1
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "plugin metric %s left out of this scrape: collect() failed: %s: %s%s",
            spec.name, type(err).__name__, err,
            " (counted in otus_plugin_metric_errors_total; further failures logged at debug)"
            if first else "",
        )  # fmt: skip


def _add_sample(fam: Any, spec: MetricSpec, task_id: str, sample: object) -> None:
    """Check a plugin's sample against its spec and add it under ``task_id``."""
    expected = HistogramSample if spec.kind == "histogram" else MetricSample
    if not isinstance(sample, expected):
        raise TypeError(f"{spec.kind} samples must be {expected.__name__}, got {sample!r}")
    labels = sample.labels
    if len(labels) != len(spec.labels) or not all(isinstance(v, str) for v in labels):
        raise ValueError(f"sample labels {labels!r} do not match label names {spec.labels!r}")
    if isinstance(sample, HistogramSample):
        _add_histogram(fam, [task_id, *labels], sample)
    else:
        fam.add_metric([task_id, *labels], float(sample.value))


def _stage_packets(c: Mapping[str, int]) -> Iterator[tuple[str, int]]:
    yield "capture", c.get("capture.packets", 0)
    yield "decode", c.get("decode.decoded", 0)
    yield "parse", sum(v for k, v in c.items() if k.startswith("parse.") and k.endswith(".in"))
    yield "process", c.get("records.parsed", 0)
    yield "report", c.get("records.reported", 0)


def _loki(fams: dict[str, Any], t: str, c: Mapping[str, int], g: Mapping[str, int]) -> None:
    """The Loki output's counts (``LokiHandler.stats()`` keys) of task ``t`` ("": the daemon)."""
    for outcome in ("sent", "dropped"):
        fams["otus_log_loki_lines_total"].add_metric([t, outcome], c.get(outcome, 0))
    fams["otus_log_loki_push_errors_total"].add_metric([t], c.get("errors", 0))
    fams["otus_log_loki_buffered_lines"].add_metric([t], g.get("buffered", 0))


def _task_counters(
    fams: dict[str, Any], t: str, interface: str, c: dict[str, int], g: dict[str, int]
) -> None:
    fams["otus_capture_packets_total"].add_metric([t, interface], c.get("capture.packets", 0))
    fams["otus_capture_bytes_total"].add_metric([t, interface], c.get("capture.bytes", 0))
    fams["otus_capture_truncated_total"].add_metric([t, interface], c.get("capture.truncated", 0))
    for stage, v in prefixed(c, "capture.drops."):
        fams["otus_capture_drops_total"].add_metric([t, stage], v)
    for reason, v in prefixed(c, "decode.error."):
        fams["otus_decode_errors_total"].add_metric([t, reason], v)
    for reason, v in prefixed(c, "decode.frag_evicted."):
        fams["otus_reassembly_evicted_total"].add_metric([t, "ip", reason], v)
    for reason, v in prefixed(c, "reassembly.tcp.evicted."):
        fams["otus_reassembly_evicted_total"].add_metric([t, "tcp", reason], v)
    fams["otus_reassembly_active_fragments"].add_metric([t], g.get("decode.frag_active", 0))
    fams["otus_tcp_streams_active"].add_metric([t], g.get("reassembly.tcp.active_flows", 0))
    if "log.loki.sent" in c:
        _loki(fams, t, dict(prefixed(c, "log.loki.")), dict(prefixed(g, "log.loki.")))
    for rest, v in prefixed(c, "lost."):
        stage, _, plugin = rest.partition(".")
        if v:
            fams["otus_pipeline_dropped_total"].add_metric([t, stage, f"{plugin}_error"], v)
    for rest, v in prefixed(c, "queue."):
        # queue.report.<reporter>.dropped.<reason>: the batches queued for one reporter;
        # queue.<stage>.dropped.<reason>: any other stage's queue
        where, sep, reason = rest.partition(".dropped.")
        if not sep:
            continue
        stage, _, name = where.partition(".")
        if stage == "report" and name:
            fams["otus_reporter_dropped_total"].add_metric([t, name, f"queue_{reason}"], v)
        else:
            fams["otus_pipeline_dropped_total"].add_metric([t, where, reason], v)
    for rest, v in prefixed(c, "parse."):
        parser, _, what = rest.partition(".")
        if what.startswith("error."):
            fams["otus_parse_errors_total"].add_metric([t, parser, what[6:]], v)
    for rest, v in prefixed(c, "report."):
        reporter, _, what = rest.partition(".")
        if what == "records":
            fams["otus_reporter_records_total"].add_metric([t, reporter], v)
        elif what == "errors":
            fams["otus_reporter_errors_total"].add_metric([t, reporter], v)
        elif what.startswith("dropped."):
            fams["otus_reporter_dropped_total"].add_metric([t, reporter, what[8:]], v)
    for rest, v in prefixed(g, "report."):
        reporter, _, what = rest.partition(".")
        if what == "buffer_records":
            fams["otus_reporter_buffer_records"].add_metric([t, reporter], v)
    for stage in ("decode", "parse", "process", "report", "batch"):
        sample = histogram_sample(c, f"latency.{stage}.", 1e-9)
        _add_histogram(fams["otus_pipeline_latency_seconds"], [t, stage], sample)
