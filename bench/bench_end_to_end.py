"""End to end on one worker: a large VoIP capture through pcap → decode → SIP → filter → Kafka.

The capture is ``bench/voip_mix.py`` (mostly RTP, VLAN tags, IPv6, SIP over UDP and TCP, large
INVITEs as IPv4 fragments), written once; each run replays it as fast as possible through the
real pipeline (the registry's ``pcap`` capturer, ``sip`` parser, ``filter`` processor dropping
ACKs, and the real ``kafka`` reporter with zstd, its cheapest codec on these records) to a tansu
broker started here. A run is one child process — one worker — and ends when every record is
acknowledged by the broker; the child reports its own peak RSS (``getrusage``). Rows:

* packets/s and SIP messages/s delivered to Kafka (median of several runs), with tshark
  dissecting SIP in the same file as the peer;
* the memory bound of the packet-path issue: peak RSS of the packet path (a null reporter in
  place of Kafka, whose buffer has its own limits) over a file 10x larger than another.

``python bench/bench_end_to_end.py [--quick]`` prints the rows.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import voip_mix
from pinning import pinned_apart

#: zstd (level 1, the reporter's default): in this worker 480-550K pkt per CPU-second against
#: lz4's 430-490K and no compression's 310-400K (interleaved, 500,000 packets, 2026-11-26).
CODEC = "zstd"
FILTER = {"rules": [{"match": {"field": "labels.sip.method", "equals": "ACK"}, "action": "drop"}]}


def _null_reporter() -> tuple[Any, Any]:
    """A reporter that counts and forgets (the memory check measures the packet path)."""
    from collections.abc import Sequence

    from pydantic import BaseModel, ConfigDict

    from otus import Record, Reporter, ReporterSpec

    class NoOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class NullReporter(Reporter):
        def __init__(self) -> None:
            self.records = 0

        def report(self, records: Sequence[Record]) -> None:
            self.records += len(records)

        def stats(self) -> dict[str, int]:
            return {"reported": self.records, "records": self.records}

    return ReporterSpec("null", lambda o, c: NullReporter(), NoOptions, "x"), NoOptions()


def _child(pcap: str, bootstrap: str, topic: str) -> None:
    """One worker: build the pipeline (not timed), run it to the end, print what happened."""
    from otus._config.task import TaskConfig
    from otus._config.validate import ValidatedTask
    from otus._pipeline.builder import build_pipeline
    from otus._pipeline.runner import Runner
    from otus._plugins.registry import load_registry
    from otus.context import PluginContext

    registry = load_registry()

    def plugin(kind: str, name: str, options: dict[str, Any]) -> tuple[Any, Any]:
        spec = registry.get(kind, name)
        return spec, spec.options_model.model_validate(options)

    kafka = {
        "brokers": [bootstrap],
        "topic": topic,
        "compression": CODEC,
        "acks": 1,
        "buffer_records": 1_000_000,
        "buffer_bytes": "1GiB",
    }
    if bootstrap == "null":
        reporter_plugin = _null_reporter()
    else:
        reporter_plugin = plugin("reporter", "kafka", kafka)
    task = ValidatedTask(
        config=TaskConfig.model_validate(
            {"id": "bench", "capture": {"name": "pcap"}, "reporters": [{"name": "kafka"}]}
        ),
        capture=plugin("capturer", "pcap", {"path": pcap}),
        parsers=[plugin("parser", "sip", {})],
        processors=[plugin("processor", "filter", FILTER)],
        reporters=[reporter_plugin],
    )
    pipeline = build_pipeline(task, PluginContext(task_id="bench"))
    reporter = pipeline.reporters[0].plugin
    runner = Runner(pipeline, flush_timeout=300)
    cpu, wall = time.process_time(), time.perf_counter()
    result = runner.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    counters = result.snapshot["counters"]
    print(
        json.dumps(
            {
                "status": result.status,
                "error": result.error,
                "wall": wall,
                "cpu": cpu,
                "counters": {k: v for k, v in counters.items() if isinstance(v, int)},
                "kafka": reporter.stats(),
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def _worker(
    pcap: Path, bootstrap: str, topic: str, broker_pid: int | None = None
) -> dict[str, Any]:
    """Run one worker process; its JSON result plus ``rss_mib`` (the child's peak RSS) and
    ``pinning``. With a broker: the worker (all its threads) on one CPU and the broker on the
    others, so the rate is one core's (:mod:`pinning`)."""
    cmd = [sys.executable, __file__, "--child", str(pcap), bootstrap, topic]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # pinned right after the start: the child is still exec'ing, none of its threads exist yet
    with pinned_apart(broker_pid, proc.pid) as pinning:
        out, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"end-to-end worker failed ({proc.returncode}): {err[-2000:]}")
    res = dict(json.loads(out.strip().splitlines()[-1]))
    if res["status"] != "completed":
        raise RuntimeError(f"end-to-end worker: {res['status']}: {res['error']}")
    kafka = res["kafka"]
    if kafka["records"] != kafka["reported"] or kafka["reported"] == 0:
        raise RuntimeError(f"end-to-end worker: not everything delivered: {kafka}")
    res["rss_mib"] = res["maxrss_kib"] / 1024
    res["pinning"] = pinning
    return res


def _tshark(pcap: Path) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID"],
        check=True,
        capture_output=True,
    ).stdout
    return time.perf_counter() - t, out.count(b"\n")


def run(quick: bool) -> list[dict[str, object]]:
    from otus.testing.kafka import TansuBroker

    small_n = 50_000 if quick else 200_000
    large_n = 10 * small_n
    runs = 3
    with tempfile.TemporaryDirectory() as tmp:
        small = voip_mix.write_large_pcap(Path(tmp) / "voip-small.pcap", small_n)
        large = voip_mix.write_large_pcap(Path(tmp) / "voip-large.pcap", large_n)
        results: list[dict[str, Any]] = []
        with TansuBroker() as broker:
            for i in range(runs):
                # the broker keeps records in memory: start each run on an empty one
                broker.restart()
                results.append(_worker(large, broker.bootstrap, f"e2e-{i}", broker.pid))
        mem_small = [_worker(small, "null", "-") for _ in range(runs)]
        mem_large = [_worker(large, "null", "-") for _ in range(runs)]
        peer_rate = peer_note = None
        if shutil.which("tshark"):  # on the small file: tshark needs minutes for the large one
            seconds, sip = _tshark(small)
            peer_rate = small_n / seconds
            peer_note = f"tshark on the {small_n:,}-packet file saw {sip:,} SIP messages"
    wall = statistics.median(r["wall"] for r in results)
    cpu = statistics.median(r["cpu"] for r in results)
    delivered = results[0]["kafka"]["records"]
    counters = results[0]["counters"]
    dropped = counters["process.filter.in"] - counters["process.filter.out"]
    rss_e2e = statistics.median(r["rss_mib"] for r in results)
    rss_large = statistics.median(r["rss_mib"] for r in mem_large)
    rss_small = statistics.median(r["rss_mib"] for r in mem_small)
    bounded = rss_large <= rss_small * 1.05 + 2
    desc = f"{large_n:,} packets of bench/voip_mix.py, {CODEC}, acks=1, one worker process"
    return [
        {
            "stage": "end to end: pcap→decode→sip→filter→kafka",
            "otus_rate": large_n / wall,
            "unit": "pkt/s",
            "peer": "tshark -Y sip" if peer_rate else None,
            "peer_rate": peer_rate,
            "note": f"{desc}; until the broker acked every record; "
            f"median of {runs}; {large_n / cpu:,.0f} pkt per CPU-second (all threads); "
            f"{results[0]['pinning']}" + (f"; {peer_note}" if peer_note else ""),
            "rss_mib": rss_e2e,
        },
        {
            "stage": "end to end: SIP messages delivered to kafka",
            "otus_rate": delivered / wall,
            "unit": "msg/s",
            "peer": None,
            "peer_rate": None,
            "note": f"{delivered:,} records acked by tansu per run, {dropped:,} ACKs dropped by "
            f"the filter; {delivered / cpu:,.0f} per CPU-second",
            "rss_mib": rss_e2e,
        },
        {
            "stage": "memory bound: peak RSS, 10x larger file",
            "otus_rate": rss_large,
            "unit": "MiB",
            "peer": f"same run over {small_n:,} pkts",
            "peer_rate": rss_small,
            "note": ("bounded" if bounded else "NOT bounded")
            + f": {rss_large:.1f} MiB over {large_n:,} packets vs {rss_small:.1f} MiB over "
            f"{small_n:,}; pcap→decode→sip→filter→null reporter (the Kafka reporter's buffer, "
            f"bounded by its own limits, is left out), median peak RSS of the worker",
            "rss_mib": rss_large,
        },
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(*sys.argv[2:5])
    else:
        for row in run("--quick" in sys.argv):
            print(row)
