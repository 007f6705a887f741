"""Turning the counters of a task (docs/pipeline.md keys) into Prometheus metric families.

This is the one place that knows both the snapshot keys and the metric names; the table of
metrics in docs/metrics.md is checked against :data:`METRICS` by a test. Label values are
bounded: task ids, worker indexes, stage and reason names chosen by code, plugin names,
and SIP methods folded to a fixed set (no Call-IDs, addresses or free text).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from otus._daemon.states import TaskState

#: name -> (type, help, labels). The source of docs/metrics.md.
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "otus_build_info": ("gauge", "Version of the running agent (always 1).", ("version", "python")),
    "otus_capture_packets_total": ("counter", "Packets captured.", ("task", "interface")),
    "otus_capture_bytes_total": ("counter", "Bytes captured.", ("task", "interface")),
    "otus_capture_drops_total": (
        "counter", "Packets lost at capture, by stage (kernel, ring, queue, …).", ("task", "stage"),
    ),
    "otus_pipeline_packets_total": (
        "counter", "Packets or records through each stage of each pipeline.",
        ("task", "pipeline", "stage"),
    ),
    "otus_pipeline_dropped_total": (
        "counter", "Items dropped inside the pipeline, by stage and reason.",
        ("task", "stage", "reason"),
    ),
    "otus_decode_errors_total": ("counter", "Malformed packets by reason.", ("task", "reason")),
    "otus_parse_errors_total": (
        "counter", "Payloads a parser rejected, by reason.", ("task", "parser", "reason"),
    ),
    "otus_pipeline_latency_seconds": (
        "histogram", "Sampled time a batch spends in a stage.", ("task", "stage"),
    ),
    "otus_reassembly_active_fragments": (
        "gauge", "IP datagrams waiting for missing fragments.", ("task",),
    ),
    "otus_reassembly_evicted_total": (
        "counter", "Reassembly state evicted, by kind (ip, tcp) and reason.",
        ("task", "kind", "reason"),
    ),
    "otus_tcp_streams_active": ("gauge", "TCP flows being reassembled.", ("task",)),
    "otus_reporter_records_total": (
        "counter", "Records a reporter delivered.", ("task", "reporter"),
    ),
    "otus_reporter_errors_total": ("counter", "Reporter delivery errors.", ("task", "reporter")),
    "otus_reporter_dropped_total": (
        "counter", "Records a reporter dropped, by reason.", ("task", "reporter", "reason"),
    ),
    "otus_reporter_buffer_records": (
        "gauge", "Records waiting in a reporter's buffer.", ("task", "reporter"),
    ),
    "otus_task_status": ("gauge", "1 for the state a task is in, 0 otherwise.", ("task", "status")),
    "otus_worker_restarts_total": ("counter", "Worker processes restarted.", ("task",)),
    "otus_sip_messages_total": (
        "counter", "SIP messages parsed, by method and status class.",
        ("task", "method", "status_class"),
    ),
    "otus_sip_dialogs_active": ("gauge", "SIP dialogs being tracked.", ("task",)),
    "otus_sip_call_setup_seconds": (
        "histogram", "Time from INVITE to the first 200 OK.", ("task",),
    ),
}  # fmt: skip

SIP_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
})  # fmt: skip


def _family(name: str) -> Any:
    kind, help_text, labels = METRICS[name]
    short = name.removesuffix("_total") if kind == "counter" else name
    cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
           "histogram": HistogramMetricFamily}[kind]  # fmt: skip
    return cls(short, help_text, labels=labels)


def _sub(values: Mapping[str, int], prefix: str) -> Iterator[tuple[str, int]]:
    """``(rest, value)`` of every key starting with ``prefix``."""
    n = len(prefix)
    for key, value in values.items():
        if key.startswith(prefix):
            yield key[n:], value


def _histogram(
    fam: Any, labels: list[str], values: Mapping[str, int], prefix: str, scale: float
) -> None:
    """Add one histogram from ``<prefix>le_<bound>`` cumulative buckets, count and sum."""
    buckets = sorted(
        (int(rest[3:]), v) for rest, v in _sub(values, prefix) if rest.startswith("le_")
    )
    count = values.get(f"{prefix}count")
    if count is None or not buckets:
        return
    total = values.get(f"{prefix}sum_ns", values.get(f"{prefix}sum_ms", 0))
    sum_scale = 1e-9 if f"{prefix}sum_ns" in values else 1e-3
    le = [(_fmt(b * scale), float(v)) for b, v in buckets] + [("+Inf", float(count))]
    fam.add_metric(labels, le, total * sum_scale)


def _fmt(x: float) -> str:
    return repr(float(x))


def task_families(
    tasks: Iterable[tuple[str, str, str, dict[int, dict[str, Any]], int]],
) -> list[Metric]:
    """Families for ``(task_id, state, interface, per-worker counters, restarts)`` tuples."""
    fams = {name: _family(name) for name in METRICS if name != "otus_build_info"}
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
    return list(fams.values())


def _stage_packets(c: Mapping[str, int]) -> Iterator[tuple[str, int]]:
    yield "capture", c.get("capture.packets", 0)
    yield "decode", c.get("decode.decoded", 0)
    yield "parse", sum(v for k, v in c.items() if k.startswith("parse.") and k.endswith(".in"))
    yield "process", c.get("records.parsed", 0)
    yield "report", c.get("records.reported", 0)


def _task_counters(
    fams: dict[str, Any], t: str, interface: str, c: dict[str, int], g: dict[str, int]
) -> None:
    fams["otus_capture_packets_total"].add_metric([t, interface], c.get("capture.packets", 0))
    fams["otus_capture_bytes_total"].add_metric([t, interface], c.get("capture.bytes", 0))
    for stage, v in _sub(c, "capture.drops."):
        fams["otus_capture_drops_total"].add_metric([t, stage], v)
    for reason, v in _sub(c, "decode.error."):
        fams["otus_decode_errors_total"].add_metric([t, reason], v)
    for reason, v in _sub(c, "decode.frag_evicted."):
        fams["otus_reassembly_evicted_total"].add_metric([t, "ip", reason], v)
    for reason, v in _sub(c, "reassembly.tcp.evicted."):
        fams["otus_reassembly_evicted_total"].add_metric([t, "tcp", reason], v)
    fams["otus_reassembly_active_fragments"].add_metric([t], g.get("decode.frag_active", 0))
    fams["otus_tcp_streams_active"].add_metric([t], g.get("reassembly.tcp.active_flows", 0))
    for rest, v in _sub(c, "lost."):
        stage, _, plugin = rest.partition(".")
        if v:
            fams["otus_pipeline_dropped_total"].add_metric([t, stage, f"{plugin}_error"], v)
    for rest, v in _sub(c, "queue."):
        stage, _, what = rest.partition(".")
        if what.startswith("dropped."):
            fams["otus_pipeline_dropped_total"].add_metric(
                [t, stage, what.removeprefix("dropped.")], v
            )
    for rest, v in _sub(c, "parse."):
        parser, _, what = rest.partition(".")
        if what.startswith("error."):
            fams["otus_parse_errors_total"].add_metric([t, parser, what[6:]], v)
    for rest, v in _sub(c, "report."):
        reporter, _, what = rest.partition(".")
        if what == "records":
            fams["otus_reporter_records_total"].add_metric([t, reporter], v)
        elif what == "errors":
            fams["otus_reporter_errors_total"].add_metric([t, reporter], v)
        elif what.startswith("dropped."):
            fams["otus_reporter_dropped_total"].add_metric([t, reporter, what[8:]], v)
    for rest, v in _sub(g, "report."):
        reporter, _, what = rest.partition(".")
        if what == "buffer_records":
            fams["otus_reporter_buffer_records"].add_metric([t, reporter], v)
    for stage in ("decode", "parse", "process", "report", "batch"):
        _histogram(fams["otus_pipeline_latency_seconds"], [t, stage], c, f"latency.{stage}.", 1e-9)
    _sip(fams, t, c, g)


def _sip(fams: dict[str, Any], t: str, c: dict[str, int], g: dict[str, int]) -> None:
    """SIP figures from the ``sip`` parser's statistics (keys in docs/sip.md)."""
    by_label: dict[tuple[str, str], int] = {}
    for method, v in _sub(c, "parse.sip.method."):
        key = (method if method in SIP_METHODS else "other", "")
        by_label[key] = by_label.get(key, 0) + v
    for klass, v in _sub(c, "parse.sip.status_class."):
        by_label[("", klass)] = by_label.get(("", klass), 0) + v
    for (method, klass), v in sorted(by_label.items()):
        fams["otus_sip_messages_total"].add_metric([t, method, klass], v)
    active = g.get("parse.sip.dialogs.active")
    if active is not None:
        fams["otus_sip_dialogs_active"].add_metric([t], active)
    _histogram(fams["otus_sip_call_setup_seconds"], [t], c, "parse.sip.call_setup.", 1e-3)
