"""Kafka reporter throughput: records of a realistic SIP call mix to a local tansu broker.

Rows: the reporter (batch API) with lz4 and with zstd, beside aiokafka's per-message
``send()`` with the same codec on the same pre-encoded messages; and, when the C record
encoding is built, the reporter with its Python encoding (``native=False``, what runs without a
C compiler), interleaved with the C runs. Rates are records per CPU
second of this process (all its threads: the caller of ``report()`` and the sender), i.e. per
core; the wall-clock rate is in the note. The broker runs in its own process; with two or
more CPUs this process is pinned to one of them and the broker to the others
(:mod:`pinning`), so the wall-clock rate is one core's too.

Everything runs under the pipeline run loop's GC settings (``tuned_gc()``: start-up objects
frozen, a higher gen-0 threshold), as ``report()`` does in a real run.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from otus import Datagram, PluginContext, Record
from otus._pipeline.runner import tuned_gc
from otus.testing.kafka import TansuBroker
from otus_reporter_kafka._native import FAST
from otus_reporter_kafka._records import BodyEncoder
from otus_reporter_kafka.encoding import JsonEncoder, encode_headers
from otus_reporter_kafka.options import KafkaReporterOptions
from otus_reporter_kafka.reporter import KafkaReporter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sip import call_mix
from pinning import pinned_apart


def sip_mix(n: int) -> list[Record]:
    """``n`` records exactly as the SIP parser makes them from ``bench_sip.call_mix`` (calls
    with SDP, registrations with a challenge, OPTIONS pings), stamped as the pipeline stamps
    them. Requests go from one of 250 caller addresses to the proxy, responses back."""
    from otus_parser_sip import SipOptions
    from otus_parser_sip.parser import SipParser

    payloads = call_mix(n // 13 + 1)[:n]
    datagrams = []
    for k, p in enumerate(payloads):
        caller = f"10.1.0.{k // 13 % 250 + 1}"
        src, dst = ("10.2.0.1", caller) if p.startswith(b"SIP/2.0 ") else (caller, "10.2.0.1")
        ts = 1_700_000_000_000_000_000 + k * 100_000
        datagrams.append(Datagram(ts, src, dst, 5060, 5060, 17, memoryview(p)))
    parser = SipParser(SipOptions())
    records: list[Record] = []
    for s in range(0, n, 1024):
        records += parser.parse(datagrams[s : s + 1024])
    if len(records) != n:
        raise RuntimeError(f"kafka bench: {len(records)} SIP records of {n}: {parser.stats()}")
    for r in records:  # what the pipeline's _stamp_records does
        r.task_id, r.agent_id, r.pipeline_id = "bench", "edge-1", 0
    return records


def _measure(fn: Callable[[], None]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


#: CPU seconds of the thread calling ``report()``, per reporter run (the rest of the process
#: CPU is the sender thread's).
_REPORT_CPU: list[float] = []


def _reporter_run(
    broker: TansuBroker, records: list[Record], codec: str, native: bool = True
) -> tuple[float, float]:
    options = KafkaReporterOptions(
        brokers=[broker.bootstrap], topic=f"bench-{codec}", compression=codec, acks=1
    )  # the default buffer: 100,000 records, 64 MiB
    reporter = KafkaReporter(options, PluginContext(), native=native)
    reporter.start()
    # steady state, as in a long-running agent: connected, the topic's partitions known
    reporter.report(records[:1])
    if not reporter.flush(30):
        raise RuntimeError(f"kafka bench: no broker: {reporter.stats()}")
    # report() never waits; a pipeline faster than Kafka would see records refused
    # (dropped.buffer_full). The bench measures the rate sustained without drops: before each
    # call it waits (asleep: no CPU) while the buffer lacks room for the next 1,000 records.
    room = options.buffer_bytes // 4

    def go() -> None:
        start = time.thread_time()
        for i in range(0, len(records), 1000):  # pipeline-sized batches
            while reporter.stats()["buffer_bytes"] > room:
                time.sleep(0.001)
            reporter.report(records[i : i + 1000])
        if native:
            _REPORT_CPU.append(time.thread_time() - start)
        if not reporter.flush(120):
            raise RuntimeError(f"kafka bench: not delivered in time: {reporter.stats()}")
        if reporter.stats()["records"] != len(records) + 1:
            raise RuntimeError(f"kafka bench: records lost: {reporter.stats()}")

    try:
        return _measure(go)
    finally:
        reporter.close(5)


def _send_run(broker: TansuBroker, records: list[Record], codec: str) -> tuple[float, float]:
    """aiokafka's per-message ``send()`` with the same key, headers and value per record."""
    from aiokafka import AIOKafkaProducer

    encoder = JsonEncoder()

    async def main() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, compression_type=codec, acks=1,
            max_batch_size=1024 * 1024, linger_ms=5,
        )  # fmt: skip
        await producer.start()
        try:
            for record in records:
                await producer.send(
                    f"send-{codec}",
                    encoder.encode(record),
                    key=record.key.encode(),
                    headers=list(encode_headers(record)),
                    timestamp_ms=record.ts_ns // 1_000_000,
                )
            await producer.flush()
        finally:
            await producer.stop()

    return _measure(lambda: asyncio.run(main()))


def run(quick: bool) -> list[dict[str, object]]:
    n = 30_000 if quick else 200_000
    repeats = 3 if quick else 5
    records = sip_mix(n)
    # The input set is the benchmark's, not the reporter's: tuned_gc() freezes it, so the
    # collector does not rescan it (a pipeline's records are short-lived).
    gc.collect()
    mean_size = sum(len(r.raw_payload) for r in records) // n
    bodies = BodyEncoder(JsonEncoder(), native=False)
    body_size = sum(len(bodies.encode(r)[0]) for r in records[:1000]) // min(n, 1000)
    rows: list[dict[str, object]] = []
    with TansuBroker() as broker, tuned_gc(), pinned_apart(broker.pid) as pinning:
        for codec in ("lz4", "zstd"):
            _REPORT_CPU.clear()
            ours: list[tuple[float, float]] = []
            pure: list[tuple[float, float]] = []
            for _ in range(repeats):  # interleaved: the machine's noise hits both alike
                ours.append(_reporter_run(broker, records, codec))
                if FAST is not None:
                    pure.append(_reporter_run(broker, records, codec, native=False))
            theirs = [_send_run(broker, records, codec) for _ in range(max(1, repeats // 2))]
            cpu = statistics.median(c for c, _ in ours)
            wall = statistics.median(w for _, w in ours)
            caller = statistics.median(_REPORT_CPU) / n * 1e6
            peer_cpu = statistics.median(c for c, _ in theirs)
            what = "C record encoding" if FAST is not None else "Python encoding (C not built)"
            rows.append(
                {
                    "stage": f"kafka reporter ({codec})",
                    "otus_rate": n / cpu,
                    "unit": "rec/s",
                    "peer": f"aiokafka send() ({codec})",
                    "peer_rate": n / peer_cpu,
                    "note": f"{n} SIP records (~{mean_size} B raw, ~{body_size} B record) to "
                    f"tansu, per CPU-second; {what}; report() {caller:.2f} us/rec of "
                    f"{cpu / n * 1e6:.2f} (the rest: the sender thread); wall "
                    f"{n / wall:,.0f} rec/s; median of {repeats}; {pinning}",
                }
            )
            if pure:
                rows.append(
                    {
                        "stage": f"Kafka reporter, Python record encoding ({codec})",
                        "otus_rate": n / statistics.median(c for c, _ in pure),
                        "unit": "rec/s",
                        "peer": None,
                        "peer_rate": None,
                        "note": f"same records, native=False (the fallback without a C "
                        f"compiler), runs interleaved with the row above; median of {repeats}",
                    }
                )
    return rows


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
