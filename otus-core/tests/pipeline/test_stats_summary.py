"""Statistics snapshot, the end-of-run summary and the progress line."""

from __future__ import annotations

import json

from otus._pipeline.progress import render
from otus._pipeline.stats import PipelineStats, PluginCounters, is_gauge
from otus._pipeline.summary import format_summary, summary_data


def test_gauges_are_told_apart_by_name() -> None:
    for key in ("active_flows", "held_bytes", "buffer_records", "frag_active", "frag_memory",
                "depth", "x.capacity"):  # fmt: skip
        assert is_gauge(key), key
    for key in ("packets", "dropped.full", "error.truncated", "out_of_order_held", "gaps"):
        assert not is_gauge(key), key


def test_snapshot_namespaces_sources_and_survives_a_failing_one() -> None:
    stats = PipelineStats()
    stats.packets = 7
    stats.parsers.append(PluginCounters("parse", "sip"))
    stats.parsers[0].items_in = 5

    def broken() -> dict[str, int]:
        raise RuntimeError("stats are broken")

    snap = stats.snapshot(
        [("capture", lambda: {"drops.kernel": 2, "bytes": 100}), ("report.k", broken),
         ("reassembly.tcp", lambda: {"active_flows": 3})]
    )  # fmt: skip
    assert snap["counters"]["capture.drops.kernel"] == 2
    assert snap["counters"]["capture.packets"] == 7
    assert snap["counters"]["parse.sip.in"] == 5
    assert snap["counters"]["errors.stats"] == 1
    assert snap["gauges"] == {"reassembly.tcp.active_flows": 3}
    assert snap["counters"]["latency.batch.count"] == 0
    json.dumps(snap)


def test_summary_lists_drops_and_errors_by_stage_and_reason() -> None:
    counters = {
        "capture.packets": 1000, "capture.bytes": 2048, "capture.batches": 2,
        "capture.drops.kernel": 4, "decode.decoded": 990, "decode.error.truncated_ip": 10,
        "decode.frag_evicted.timeout": 1, "parse.sip.in": 50, "parse.sip.chunks": 0,
        "parse.sip.records": 48, "parse.sip.error.bad_start_line": 2,
        "process.filter.in": 48, "process.filter.out": 30, "process.filter.dropped.rule1": 18,
        "report.kafka.in": 30, "report.kafka.dropped.buffer_full": 3, "errors.report.kafka": 1,
        "lost.report.kafka": 5, "records.parsed": 48, "records.reported": 30,
        "reassembly.tcp.closed.timeout": 9, "latency.decode.count": 3,
    }  # fmt: skip
    data = summary_data({"counters": counters}, status="completed", error=None, elapsed=1.25)
    assert data["dropped"] == {
        "capture.drops.kernel": 4, "decode.frag_evicted.timeout": 1,
        "lost.report.kafka": 5, "report.kafka.dropped.buffer_full": 3,
    }  # fmt: skip
    assert data["errors"] == {
        "decode.error.truncated_ip": 10, "errors.report.kafka": 1,
        "parse.sip.error.bad_start_line": 2,
    }  # fmt: skip
    assert data["processed"] == {"filter": {"in": 48, "out": 30}}
    text = format_summary(data)
    assert "read       1,000 packets (2.0 KiB) in 2 batches" in text
    assert "parsed     sip: 48 records from 50 datagrams" in text
    assert "processed  filter: 48 in, 30 out" in text
    assert "dropped    capture.drops.kernel: 4" in text
    json.dumps(data)


def test_records_a_reporter_still_held_at_the_end_are_shown() -> None:
    """A second Ctrl-C quits while Kafka is away: the 36 records in its buffer are lost with
    the process. Before, the summary said 'dropped none' and nothing else."""
    counters = {"capture.packets": 60, "report.kafka.in": 36, "records.reported": 36}
    gauges = {"report.kafka.buffer_records": 36, "report.console.buffer_records": 0,
              "report.kafka.buffer_bytes": 9000}  # fmt: skip
    data = summary_data(
        {"counters": counters, "gauges": gauges}, status="interrupted", error=None, elapsed=1.0
    )
    assert data["held"] == {"report.kafka.buffer_records": 36}
    assert "held       report.kafka.buffer_records: 36 (not delivered)" in format_summary(data)
    clean = summary_data({"counters": counters}, status="completed", error=None, elapsed=1.0)
    assert clean["held"] == {}
    assert "held" not in format_summary(clean)


def test_progress_line_with_and_without_a_known_total() -> None:
    line = render(512 * 1024, 1024 * 1024, 20_000, 2.0, 100)
    assert line.startswith("[")
    assert " 50%  512.0 KiB / 1.0 MiB  20.00k pkts  10.00k pkt/s  ETA 0:02" in line
    assert len(line) < 100
    assert render(2048, None, 5, 1.0, 80) == "2.0 KiB  5 pkts  5 pkt/s"


def test_the_json_summary_carries_every_statistic() -> None:
    """Before: --summary-json had the digest only, so a parser's own counts (SIP methods and
    statuses, dialogs) could not be compared with tshark's sip,stat from an otus run."""
    counters = {"capture.packets": 3, "parse.sip.method.INVITE": 2, "parse.sip.dialogs.failed": 0}
    gauges = {"parse.sip.dialogs.active": 1}
    data = summary_data(
        {"counters": counters, "gauges": gauges}, status="completed", error=None, elapsed=1.0
    )
    assert data["counters"] == counters
    assert data["gauges"] == gauges
    assert "parse.sip.method.INVITE" not in format_summary(data)  # the text stays a digest
