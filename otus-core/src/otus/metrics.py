"""Prometheus metrics a plugin declares, derived from the statistics of a task.

A plugin returns :class:`MetricSpec` objects from the ``otus_metrics()`` registration hook. At
every scrape the daemon adds up the ``stats()`` of all workers of a task (the keys of
docs/pipeline.md, e.g. ``parse.sip.method.INVITE``) and calls each spec's ``collect`` with those
counters and gauges; the samples it returns become the metric family's series for that task.
Nothing here runs on the data path: ``collect`` is called at scrape time, per task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "HistogramSample",
    "MetricKind",
    "MetricSample",
    "MetricSpec",
    "RESERVED_LABELS",
    "histogram_sample",
    "prefixed",
    "series_names",
]

MetricKind = Literal["counter", "gauge", "histogram"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Labels Otus adds itself (``task``) or that Prometheus reserves for histograms (``le``).
RESERVED_LABELS = frozenset({"task", "le", "quantile"})


@dataclass(frozen=True)
class MetricSample:
    """One series of a counter or gauge: values of the spec's labels (in order) and a value."""

    labels: tuple[str, ...]
    value: float


@dataclass(frozen=True)
class HistogramSample:
    """One series of a histogram.

    ``buckets`` are ``(upper bound in the metric's unit, cumulative count)`` in increasing order;
    the ``+Inf`` bucket is ``count`` and is added by Otus.
    """

    labels: tuple[str, ...]
    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float


#: ``collect(counters, gauges)``: the task's summed counters and gauges (read-only) → samples.
Collect = Callable[[Mapping[str, int], Mapping[str, int]], Iterable[MetricSample | HistogramSample]]


@dataclass(frozen=True)
class MetricSpec:
    """A metric family a plugin derives from the statistics of each task.

    ``name`` is the exposed name (counters end in ``_total``; prefix it ``otus_<plugin>_``);
    ``labels`` are the plugin's own label names, in the order of each sample's ``labels``:
    Otus puts ``task`` first by itself. ``label_help`` says what each label holds (rendered in
    docs/metrics.md); keep label values bounded (no addresses, Call-IDs or free text).
    ``collect`` is called at scrape time, once per task; if it raises or returns a sample of the
    wrong shape the family is left out of that scrape and counted in
    ``otus_plugin_metric_errors_total``.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    collect: Collect
    label_help: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("counter", "gauge", "histogram"):
            raise ValueError(f"metric {self.name!r}: kind must be counter, gauge or histogram")
        if not _NAME.fullmatch(self.name) or self.name.startswith("__"):
            raise ValueError(f"metric name {self.name!r} is not a valid Prometheus name")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(
                f"metric {self.name!r}: counter names end in _total, other kinds' names do not"
            )
        if not self.help.strip():
            raise ValueError(f"metric {self.name!r}: help must say what it measures")
        if not isinstance(self.labels, tuple):
            raise ValueError(f"metric {self.name!r}: labels must be a tuple of names")
        for label in self.labels:
            if not _LABEL.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"metric {self.name!r}: bad label name {label!r}")
            if label in RESERVED_LABELS:
                raise ValueError(f"metric {self.name!r}: label {label!r} is reserved")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"metric {self.name!r}: duplicate label names")
        unknown = set(self.label_help) - set(self.labels)
        if unknown:
            raise ValueError(f"metric {self.name!r}: label_help for unknown {sorted(unknown)}")


def series_names(name: str, kind: str) -> frozenset[str]:
    """Every sample name a family exposes (``_total``/``_created``, ``_bucket``/…), so that two
    families that would produce the same series can be told apart before serving them."""
    if kind == "counter":
        base = name.removesuffix("_total")
        return frozenset({base, f"{base}_total", f"{base}_created"})
    if kind == "histogram":
        return frozenset({name, *(f"{name}_{s}" for s in ("bucket", "count", "sum", "created"))})
    return frozenset({name})


def prefixed(values: Mapping[str, int], prefix: str) -> Iterator[tuple[str, int]]:
    """``(rest, value)`` of every key starting with ``prefix`` (``rest`` without it)."""
    n = len(prefix)
    for key, value in values.items():
        if key.startswith(prefix):
            yield key[n:], value


def histogram_sample(
    values: Mapping[str, int], prefix: str, unit: float, labels: tuple[str, ...] = ()
) -> HistogramSample | None:
    """A histogram from the statistics convention for latencies, or ``None`` when absent.

    Reads the cumulative buckets ``<prefix>le_<bound>`` (bounds in ``unit`` seconds, e.g.
    ``1e-3`` for milliseconds), ``<prefix>count`` and ``<prefix>sum_ns`` or ``<prefix>sum_ms``;
    bounds become seconds.
    """
    buckets = sorted(
        (int(rest[3:]), v)
        for rest, v in prefixed(values, prefix)
        if rest.startswith("le_") and rest[3:].isdigit()
    )
    count = values.get(f"{prefix}count")
    if count is None or not buckets:
        return None
    if f"{prefix}sum_ns" in values:
        total = values[f"{prefix}sum_ns"] * 1e-9
    else:
        total = values.get(f"{prefix}sum_ms", 0) * 1e-3
    return HistogramSample(
        labels, tuple((b * unit, float(v)) for b, v in buckets), float(count), total
    )
