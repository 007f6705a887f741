"""The core metric families: name, type, help and labels (the source of docs/metrics.md).

Kept apart from the code building the families so that the plugin registry can check plugin
metric names against these without importing prometheus_client.
"""

from __future__ import annotations

__all__ = ["METRICS"]

#: name -> (type, help, labels). The source of docs/metrics.md.
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "otus_build_info": ("gauge", "Version of the running agent (always 1).", ("version", "python")),
    "otus_log_loki_lines_total": (
        "counter", "Log lines of the Loki output (otus.log.loki) by outcome: sent (Loki took "
        "them) or dropped (buffer full, refused by Loki, Loki still away at shutdown); task "
        "empty for the daemon's own lines.",
        ("task", "outcome"),
    ),
    "otus_log_loki_push_errors_total": (
        "counter", "Pushes to Loki that failed (retried, or refused and dropped).", ("task",),
    ),
    "otus_log_loki_buffered_lines": (
        "gauge", "Log lines waiting for Loki in memory (bounded by otus.log.loki.buffer).",
        ("task",),
    ),
    "otus_capture_packets_total": ("counter", "Packets captured.", ("task", "interface")),
    "otus_capture_bytes_total": ("counter", "Bytes captured.", ("task", "interface")),
    "otus_capture_drops_total": (
        "counter", "Packets lost at capture, by stage (kernel, ring, queue, …).", ("task", "stage"),
    ),
    "otus_capture_truncated_total": (
        "counter", "Packets captured shorter than on the wire (the snap length cut them).",
        ("task", "interface"),
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
    "otus_plugin_metric_errors_total": (
        "counter", "Scrapes where a plugin's metric family failed to collect and was left out.",
        ("metric",),
    ),
}  # fmt: skip
