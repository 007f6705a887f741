"""Helpers for the reporter tests: SIP-like records and a consumer that drains a topic."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from otus import PluginContext, Record
from otus_reporter_kafka.options import KafkaReporterOptions
from otus_reporter_kafka.reporter import KafkaReporter


@dataclass
class Message:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int

    def header(self, name: str) -> bytes:
        return dict(self.headers)[name]


def sip_record(seq: int, *, payload_type: str = "sip", raw: bytes | None = None) -> Record:
    """A record as the SIP parser would make it; ``seq`` is kept in the label ``test.seq``."""
    body = (
        raw if raw is not None else b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\nCall-ID: c%d\r\n\r\n" % seq
    )
    return Record(
        ts_ns=1_700_000_000_123_456_789 + seq * 1_000_000,
        src_ip=f"10.0.{seq % 3}.1",
        dst_ip="10.0.0.2",
        src_port=5060 + seq % 11,
        dst_port=5060,
        protocol=17,
        payload_type=payload_type,
        raw_payload=body,
        payload={"method": "INVITE", "call_id": f"c{seq}", "cseq": {"seq": seq}},
        labels={"sip.method": "INVITE", "sip.call_id": f"c{seq}", "test.seq": str(seq)},
        task_id="task-1",
        agent_id="node-a",
        pipeline_id=2,
    )


def make_reporter(bootstrap: str, *, native: bool = True, **options: object) -> KafkaReporter:
    opts = KafkaReporterOptions.model_validate({"brokers": [bootstrap], **options})
    context = PluginContext(task_id="task-1", agent_id="node-a")
    reporter = KafkaReporter(opts, context, native=native)
    reporter.start()
    return reporter


def consume(bootstrap: str, topic: str, n: int, timeout: float = 15.0) -> list[Message]:
    """Everything in ``topic`` from the start, once ``n`` messages arrived (or ``timeout``),
    plus anything that follows within a short grace period (to catch duplicates)."""

    async def run() -> list[Message]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: list[Message] = []
        deadline = time.monotonic() + timeout
        grace: float | None = None
        try:
            while time.monotonic() < deadline and (grace is None or time.monotonic() < grace):
                batch = await consumer.getmany(timeout_ms=100)
                for msgs in batch.values():
                    got.extend(
                        Message(m.topic, m.partition, m.key, m.value, tuple(m.headers), m.timestamp)
                        for m in msgs
                    )
                if grace is None and len(got) >= n:
                    grace = time.monotonic() + 0.5
        finally:
            await consumer.stop()
        return got

    return asyncio.run(run())


def seqs(messages: list[Message]) -> list[int]:
    return [int(m.header("l.test.seq")) for m in messages]


def accounted(stats: dict[str, int]) -> int:
    """Every reported record is delivered, handed to the fallback, held, or dropped."""
    dropped = sum(v for k, v in stats.items() if k.startswith("dropped."))
    return stats["records"] + stats["fallback"] + stats["buffer_records"] + dropped


# -- labels handed as JSON bytes (Record(labels_json=...)) --------------------------------------

_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
          "\r": "\\r", "\t": "\\t"}  # fmt: skip


def _u(code: int, rng: random.Random) -> str:
    text = f"\\u{code:04x}"
    return text.upper().replace("\\U", "\\u") if rng.random() < 0.5 else text


def _variant_str(text: str, rng: random.Random) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        must = ch in '"\\' or code < 0x20
        roll = rng.random()
        if not must and roll < 0.6:
            out.append(ch)
        elif ch in _SHORT and roll < 0.8:
            out.append(_SHORT[ch])
        elif code >= 0x10000:  # a surrogate pair
            code -= 0x10000
            out.append(_u(0xD800 + (code >> 10), rng) + _u(0xDC00 + (code & 0x3FF), rng))
        else:
            out.append(_u(code, rng))
    out.append('"')
    return "".join(out)


def labels_json_variant(labels: dict[str, str], rng: random.Random) -> bytes:
    """``labels`` as compact JSON that decodes to the same dict but is spelt with escapes
    orjson never writes (``\\/``, ``\\u00e9`` in either case, surrogate pairs, short escapes as
    ``\\u00XX``)."""
    pairs = [_variant_str(k, rng) + ":" + _variant_str(v, rng) for k, v in labels.items()]
    return ("{" + ",".join(pairs) + "}").encode()


HOSTILE_PIECES = [
    b'"', b"\\", b"{", b"}", b",", b":", b" ", b"\x00", b"\x1f", b"\xff", b"\xc0\xaf",
    b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\\ud800", b"\\udc00", b"\\ud83d\\u0041",
    b"\\u12", b"\\x41", b"\\U0041", b"\\u", b"1", b"null", b"[]", b'{"x":"y"}', b'"a":"b"',
]  # fmt: skip


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one hostile edit: cut short, a byte dropped or replaced, a hostile piece
    inserted, or something appended."""
    at = rng.randrange(len(data) + 1)
    roll = rng.random()
    if roll < 0.2:
        return data[:at]
    if roll < 0.35 and data:
        at = min(at, len(data) - 1)
        return data[:at] + data[at + 1 :]
    if roll < 0.5 and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    if roll < 0.9:
        return data[:at] + rng.choice(HOSTILE_PIECES) + data[at:]
    return data + rng.choice(HOSTILE_PIECES)
