"""The SIP parser's Prometheus metrics, derived from its statistics (keys in docs/sip.md).

Registered through the ``otus_metrics()`` hook; Otus calls each ``collect`` at scrape time with
a task's counters and gauges summed over its workers (``parse.sip.…`` keys) and adds ``task``.
A task with the parser more than once (``sip``, ``sip#2``, …) is counted over all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from otus import HistogramSample, MetricSample, MetricSpec, histogram_sample, prefixed

__all__ = ["METRICS", "SIP_METHODS"]

#: Where the parser's statistics sit in a task's counters (the parser is registered as ``sip``).
PREFIX = "parse.sip."
#: The statistics of every instance of the parser in a task: ``parse.sip.`` and, when a task
#: names the parser more than once, ``parse.sip#2.`` and so on.
_INSTANCE = re.compile(r"parse\.sip(?:#\d+)?\.")

_S = TypeVar("_S")


def _summed(values: Mapping[str, int]) -> dict[str, int]:
    """The parser's keys of a task, summed over its instances under :data:`PREFIX`."""
    out: dict[str, int] = {}
    for key, value in values.items():
        m = _INSTANCE.match(key)
        if m is not None:
            name = PREFIX + key[m.end() :]
            out[name] = out.get(name, 0) + value
    return out


def _over_instances(
    collect: Callable[[Mapping[str, int], Mapping[str, int]], Iterator[_S]],
) -> Callable[[Mapping[str, int], Mapping[str, int]], Iterator[_S]]:
    def summed(counters: Mapping[str, int], gauges: Mapping[str, int]) -> Iterator[_S]:
        return collect(_summed(counters), _summed(gauges))

    return summed


#: Methods exposed as themselves; any other is counted as ``other`` so that a flood of odd
#: methods cannot grow the number of series.
SIP_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
})  # fmt: skip


def _messages(counters: Mapping[str, int], _gauges: Mapping[str, int]) -> Iterator[MetricSample]:
    by_label: dict[tuple[str, str], int] = {}
    for method, v in prefixed(counters, f"{PREFIX}method."):
        key = (method if method in SIP_METHODS else "other", "")
        by_label[key] = by_label.get(key, 0) + v
    for klass, v in prefixed(counters, f"{PREFIX}status_class."):
        by_label[("", klass)] = by_label.get(("", klass), 0) + v
    for labels, v in sorted(by_label.items()):
        yield MetricSample(labels, v)


def _dialogs(_counters: Mapping[str, int], gauges: Mapping[str, int]) -> Iterator[MetricSample]:
    active = gauges.get(f"{PREFIX}dialogs.active")
    if active is not None:
        yield MetricSample((), active)


def _call_setup(
    counters: Mapping[str, int], _gauges: Mapping[str, int]
) -> Iterator[HistogramSample]:
    sample = histogram_sample(counters, f"{PREFIX}call_setup.", 1e-3)  # buckets in ms
    if sample is not None:
        yield sample


_METHODS_TEXT = ", ".join(f"`{m}`" for m in sorted(SIP_METHODS))

METRICS = [
    MetricSpec(
        name="otus_sip_messages_total",
        kind="counter",
        help="SIP messages parsed, by method and status class.",
        labels=("method", "status_class"),
        collect=_over_instances(_messages),
        label_help={
            "method": f"SIP request method ({_METHODS_TEXT}), else `other`; empty on responses",
            "status_class": "SIP response class (`1xx` … `6xx`); empty on requests",
        },
    ),
    MetricSpec(
        name="otus_sip_dialogs_active",
        kind="gauge",
        help="SIP dialogs being tracked.",
        labels=(),
        collect=_over_instances(_dialogs),
    ),
    MetricSpec(
        name="otus_sip_call_setup_seconds",
        kind="histogram",
        help="Time from INVITE to the first 200 OK.",
        labels=(),
        collect=_over_instances(_call_setup),
    ),
]
