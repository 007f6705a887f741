"""The filter's Prometheus metrics, derived from its statistics (keys in the README).

Registered through the ``otus_metrics()`` hook; Otus calls each ``collect`` at scrape time with
a task's counters summed over its workers (``process.filter.…`` keys) and adds ``task``. A task
with the filter more than once (``filter``, ``filter#2``, …) is counted over all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from otus import MetricSample, MetricSpec

__all__ = ["METRICS"]

#: The statistics of every instance of the processor in a task.
_INSTANCE = re.compile(r"process\.filter(?:#\d+)?\.")


def _summed(counters: Mapping[str, int]) -> dict[str, int]:
    """The filter's keys of a task (``kept``, ``dropped.<rule>``), summed over its instances."""
    out: dict[str, int] = {}
    for key, value in counters.items():
        m = _INSTANCE.match(key)
        if m is not None:
            name = key[m.end() :]
            out[name] = out.get(name, 0) + value
    return out


def _kept(counters: Mapping[str, int], _gauges: Mapping[str, int]) -> Iterator[MetricSample]:
    kept = _summed(counters).get("kept")
    if kept is not None:
        yield MetricSample((), kept)


def _dropped(counters: Mapping[str, int], _gauges: Mapping[str, int]) -> Iterator[MetricSample]:
    for key, value in sorted(_summed(counters).items()):
        if key.startswith("dropped."):
            yield MetricSample((key[len("dropped.") :],), value)


METRICS = (
    MetricSpec(
        name="otus_filter_dropped_total",
        kind="counter",
        help="Records the filter processor dropped, by the rule that dropped them.",
        labels=("rule",),
        collect=_dropped,
        label_help={
            "rule": "the rule's `name` (its index when unnamed), or `default` for "
            '`default = "drop"`'
        },
    ),
    MetricSpec(
        name="otus_filter_kept_total",
        kind="counter",
        help="Records the filter processor passed on.",
        labels=(),
        collect=_kept,
    ),
)
