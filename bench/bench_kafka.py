"""Kafka reporter throughput: records of a realistic SIP call mix to a local tansu broker.

Rows: the reporter (batch API) with lz4 and with zstd, beside aiokafka's per-message
``send()`` with the same codec on the same pre-encoded messages. Rates are records per CPU
second of this process (all its threads: the caller of ``report()`` and the sender), i.e. per
core; the wall-clock rate is in the note. The broker runs in its own process.

Everything runs under the pipeline run loop's GC settings (``tuned_gc()``: start-up objects
frozen, a higher gen-0 threshold), as ``report()`` does in a real run.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable

from otus import PluginContext, Record
from otus._pipeline.runner import tuned_gc
from otus.testing.kafka import TansuBroker
from otus_reporter_kafka.encoding import JsonEncoder, encode_headers
from otus_reporter_kafka.options import KafkaReporterOptions
from otus_reporter_kafka.reporter import KafkaReporter

_SDP = (
    b"v=0\r\no=- 53655765 2353687637 IN IP4 10.1.0.%d\r\ns=-\r\nc=IN IP4 10.1.0.%d\r\n"
    b"t=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
#: One call as sipp's uac/uas scenario exchanges it: (direction, first line, cseq, has sdp).
_CALL = [
    (0, "INVITE sip:bob@10.2.0.1:5060 SIP/2.0", "1 INVITE", True),
    (1, "SIP/2.0 100 Trying", "1 INVITE", False),
    (1, "SIP/2.0 180 Ringing", "1 INVITE", False),
    (1, "SIP/2.0 200 OK", "1 INVITE", True),
    (0, "ACK sip:bob@10.2.0.1:5060 SIP/2.0", "1 ACK", False),
    (0, "BYE sip:bob@10.2.0.1:5060 SIP/2.0", "2 BYE", False),
    (1, "SIP/2.0 200 OK", "2 BYE", False),
]


def sip_mix(n: int) -> list[Record]:
    """``n`` records of whole calls between 250 caller and 4 callee addresses."""
    out: list[Record] = []
    call = 0
    while len(out) < n:
        caller = f"10.1.0.{call % 250 + 1}"
        call_id = f"{call}-4242@{caller}"
        for direction, first, cseq, sdp in _CALL:
            src, dst = (caller, "10.2.0.1") if direction == 0 else ("10.2.0.1", caller)
            body = _SDP % (call % 250 + 1, call % 250 + 1, 16000 + 2 * call % 20000) if sdp else b""
            method = first.split()[0] if not first.startswith("SIP/") else cseq.split()[1]
            head = (
                f"{first}\r\nVia: SIP/2.0/UDP {caller}:5060;branch=z9hG4bK-{call}-{cseq[0]}\r\n"
                f"From: sipp <sip:alice@{caller}:5060>;tag={call}SIPpTag00\r\n"
                f"To: bob <sip:bob@10.2.0.1:5060>{';tag=' + str(call) if direction else ''}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:alice@{caller}:5060>\r\n"
                f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            labels = {
                "sip.method": method,
                "sip.call_id": call_id,
                "sip.from_uri": f"sip:alice@{caller}:5060",
                "sip.to_uri": "sip:bob@10.2.0.1:5060",
            }
            payload: dict[str, object] = {
                "first_line": first,
                "method": method,
                "call_id": call_id,
                "cseq": cseq,
                "headers": {"via": [f"SIP/2.0/UDP {caller}:5060"], "max-forwards": "70"},
                "body_len": len(body),
            }
            if first.startswith("SIP/"):
                labels["sip.status_code"] = first.split()[1]
            out.append(
                Record(
                    ts_ns=1_700_000_000_000_000_000 + len(out) * 1000,
                    src_ip=src,
                    dst_ip=dst,
                    src_port=5060,
                    dst_port=5060,
                    protocol=17,
                    payload_type="sip",
                    raw_payload=head + body,
                    payload=payload,
                    labels=labels,
                    task_id="bench",
                    agent_id="edge-1",
                )
            )
        call += 1
    return out[:n]


def _measure(fn: Callable[[], None]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def _reporter_run(broker: TansuBroker, records: list[Record], codec: str) -> tuple[float, float]:
    options = KafkaReporterOptions(
        brokers=[broker.bootstrap],
        topic=f"bench-{codec}",
        compression=codec,  # type: ignore[arg-type]
        buffer_records=len(records) + 1,
        buffer_bytes=4 * 1024**3,
        acks=1,
    )
    reporter = KafkaReporter(options, PluginContext())
    reporter.start()

    def go() -> None:
        for i in range(0, len(records), 1000):  # pipeline-sized batches
            reporter.report(records[i : i + 1000])
        if not reporter.flush(120):
            raise RuntimeError(f"kafka bench: not delivered in time: {reporter.stats()}")

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
    rows: list[dict[str, object]] = []
    with TansuBroker() as broker, tuned_gc():
        for codec in ("lz4", "zstd"):
            ours = [_reporter_run(broker, records, codec) for _ in range(repeats)]
            theirs = [_send_run(broker, records, codec) for _ in range(max(1, repeats // 2))]
            cpu = statistics.median(c for c, _ in ours)
            wall = statistics.median(w for _, w in ours)
            peer_cpu = statistics.median(c for c, _ in theirs)
            rows.append(
                {
                    "stage": f"kafka reporter ({codec})",
                    "otus_rate": n / cpu,
                    "unit": "rec/s",
                    "peer": f"aiokafka send() ({codec})",
                    "peer_rate": n / peer_cpu,
                    "note": f"{n} SIP records (~{mean_size} B raw) to tansu, per CPU-second; "
                    f"wall {n / wall:,.0f} rec/s; median of {repeats}",
                }
            )
    return rows


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
