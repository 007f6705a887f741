"""Whole packet path: pcap → decode → SIP parse → filter → a null reporter, one pipeline.

Generates a VoIP-like capture once (mostly RTP, one SIP message in 50 packets), runs the real
pipeline (``otus._pipeline``) over it several times and reports the median packet rate. The
peer is tshark decoding and dissecting SIP in the same file (``-Y sip``), when installed.
``python bench/bench_pipeline.py [--quick]`` prints the rows.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _sip(i: int) -> bytes:
    return (
        f"INVITE sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{i}\r\n"
        f"From: <sip:alice@example.com>;tag={i}\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{i}@example.com\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _write_capture(path: Path, packets: int) -> int:
    """Write the capture; return how many SIP messages it holds."""
    from otus.testing.packets import ethernet_udp_frame, write_pcap

    rtp = [ethernet_udp_frame(b"\x80\x00" + bytes(170), dport=20000 + 2 * k) for k in range(16)]
    frames = [ethernet_udp_frame(_sip(i)) if i % 50 == 0 else rtp[i % 16] for i in range(packets)]
    write_pcap(path, frames, step_ns=20_000)
    return (packets + 49) // 50


def _pipeline(path: Path, parse: bool = True) -> Any:
    from pydantic import BaseModel, ConfigDict

    from otus import Record, Reporter, ReporterSpec
    from otus._config.task import TaskConfig
    from otus._config.validate import ValidatedTask
    from otus._pipeline.builder import build_pipeline
    from otus._plugins.registry import load_registry
    from otus.context import PluginContext

    class NoOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class NullReporter(Reporter):
        """Counts and forgets: the benchmark measures the pipeline, not a destination."""

        def __init__(self) -> None:
            self.records = 0

        def report(self, records: Sequence[Record]) -> None:
            self.records += len(records)

    registry = load_registry()

    def plugin(kind: str, name: str, options: dict[str, Any]) -> tuple[Any, Any]:
        spec = registry.get(kind, name)
        return spec, spec.options_model.model_validate(options)

    task = ValidatedTask(
        config=TaskConfig.model_validate(
            {"id": "bench", "capture": {"name": "pcap"}, "reporters": [{"name": "null"}]}
        ),
        capture=plugin("capturer", "pcap", {"path": str(path)}),
        parsers=[plugin("parser", "sip", {})] if parse else [],
        processors=[
            plugin(
                "processor",
                "filter",
                {"rules": [{"match": {"field": "dst_port", "equals": 9}, "action": "drop"}]},
            )
        ],
        reporters=[
            (ReporterSpec("null", lambda o, c: NullReporter(), NoOptions, "x"), NoOptions())
        ],
    )
    return build_pipeline(task, PluginContext(task_id="bench"))


def _otus(path: Path, sip: int) -> float:
    """Seconds of one run (the pipeline is built first: plugin loading is not timed)."""
    from otus._pipeline.runner import Runner

    runner = Runner(_pipeline(path, parse=sip > 0))
    t = time.perf_counter()
    result = runner.run()
    seconds = time.perf_counter() - t
    counters = result.snapshot["counters"]
    assert result.status == "completed", result.error
    assert counters["records.reported"] == sip, counters["records.reported"]
    return seconds


def _tshark(path: Path, sip: int) -> float:
    t = time.perf_counter()
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds = time.perf_counter() - t
    assert len(out.splitlines()) == sip, len(out.splitlines())
    return seconds


def _median_seconds(fn: Any, path: Path, sip: int, runs: int) -> float:
    return float(statistics.median(fn(path, sip) for _ in range(runs)))


def run(quick: bool) -> list[dict[str, object]]:
    packets = 200_000 if quick else 2_000_000
    runs = 3 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "voip.pcap"
        sip = _write_capture(path, packets)
        _otus(path, sip)  # warm the page cache and import everything once
        otus_rate = packets / _median_seconds(_otus, path, sip, runs)
        bare_rate = packets / _median_seconds(_otus, path, 0, runs)
        peer_rate = None
        if shutil.which("tshark"):
            peer_runs = 1 if quick else 3
            peer_rate = packets / _median_seconds(_tshark, path, sip, peer_runs)
    return [
        {
            "stage": "whole path (pcap→decode→sip→filter→null)",
            "otus_rate": otus_rate,
            "unit": "pkt/s",
            "peer": "tshark -Y sip" if peer_rate else None,
            "peer_rate": peer_rate,
            "note": f"{packets:,} packets, 2% SIP, one pipeline, page cache",
        },
        {
            "stage": "pipeline, no parser (pcap→decode→classify)",
            "otus_rate": bare_rate,
            "unit": "pkt/s",
            "peer": None,
            "peer_rate": None,
            "note": "the run loop's own cost: every packet decoded, none wanted",
        },
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        peer = ""
        if row["peer_rate"]:
            ratio = row["otus_rate"] / row["peer_rate"]  # type: ignore[operator]
            peer = f"  {row['peer']} {row['peer_rate']:>12,.0f}  x{ratio:.1f}"
        print(
            f"{row['stage']:<44} otus {row['otus_rate']:>12,.0f} {row['unit']}{peer}"
            f"  ({row['note']})"
        )
