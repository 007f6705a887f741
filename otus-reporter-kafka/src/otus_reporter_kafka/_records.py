"""One record's Kafka body, encoded once in ``report()``: key, value and headers as bytes.

The body is a Kafka v2 record without its length, attributes, timestamp delta and offset
delta (those depend on the batch: :func:`otus_reporter_kafka._batch.records_section`). Key,
headers and value are those of :mod:`otus_reporter_kafka.encoding` (the Go Otus wire format).
What repeats per flow (key, the seven flow headers, the key's murmur2 hash, and with the JSON
encoder the value's fixed fields) and per label is encoded once and cached (bounded); one
flow look-up per record serves key, headers and value.

With the JSON encoder, :meth:`BodyEncoder.encode_run` encodes whole runs of records in C
(:mod:`otus_reporter_kafka._native`, when built) into the same bytes, through the same flow
cache; a record the C code does not take plainly is left to :meth:`BodyEncoder.encode`.
"""

from __future__ import annotations

from typing import Any

from orjson import dumps

from otus import Record
from otus_reporter_kafka._batch import varint
from otus_reporter_kafka._buffer import Buffer, Message
from otus_reporter_kafka._native import FAST
from otus_reporter_kafka.encoding import (
    Encoder,
    JsonEncoder,
    encode_key,
    json_flow_parts,
    json_value,
    label_items,
)
from otus_reporter_kafka.partitioner import key_hash

__all__ = ["BodyEncoder", "FlowParts"]

#: Key with its length, the seven flow headers, the key hash, and the JSON value's parts
#: before and after the timestamp (empty unless the value is JSON).
FlowParts = tuple[bytes, bytes, int, bytes, bytes]

_TIMESTAMP_NAME = varint(len(b"timestamp")) + b"timestamp"


def _header(name: str, value: bytes) -> bytes:
    raw = name.encode()
    return varint(len(raw)) + raw + varint(len(value)) + value


class BodyEncoder:
    """Record bodies with per-flow and per-label parts cached (bounded)."""

    def __init__(self, encoder: Encoder, max_cached: int = 16_384, *, native: bool = True) -> None:
        self._encoder = encoder
        self._json = type(encoder) is JsonEncoder  # its value is assembled here, same bytes
        self._flows: dict[tuple[Any, ...], FlowParts] = {}
        self._labels: dict[tuple[str, str], bytes] = {}
        self._topics: dict[str, str] = {}
        self._max = max_cached
        #: Whole runs of records are encoded in C (JSON values only; ``native=False`` or no
        #: compiler at install time: one record at a time in Python).
        self.native = native and self._json and FAST is not None

    def encode_run(
        self,
        records: list[Record],
        start: int,
        out: list[Message],
        topic: str | None,
        prefix: str,
        keep: bool,
        max_size: int,
        framing: int,
    ) -> tuple[int, int]:
        """Messages of ``records[start:]`` appended to ``out`` in C, up to the first record
        that must go through :meth:`encode` (oversized, or a field of an unusual type): its
        index (``len(records)`` when none), and the held size of what was appended. The topic
        is ``topic``, else ``prefix`` + the payload type; ``keep``: messages hold their record.
        Only when :attr:`native`."""
        assert FAST is not None
        result: tuple[int, int] = FAST.encode_bodies(
            records, start, out, self._flows, self._flow, dumps, topic, self._topic_cache(), prefix,
            keep, max_size, framing, Message,
        )  # fmt: skip
        return result

    def encode_sections(
        self,
        records: list[Record],
        start: int,
        out: list[Message],
        topic: str | None,
        prefix: str,
        max_size: int,
        framing: int,
        buffer: Buffer,
        limit: int,
    ) -> tuple[int, int, int, int, int]:
        """:meth:`encode_run` writing each record straight into the open section of its
        partition (the sections of ``buffer``, whose lock the caller holds), within the room
        the buffer has left; a record whose topic has no route yet becomes a Message in
        ``out``. The index of the first record the Python path must take, the held size and
        count of the records written into sections, how many were refused for want of room,
        and the held size of the Messages. Only when :attr:`native`."""
        assert FAST is not None
        room_records, room_bytes = buffer.room()
        result: tuple[int, int, int, int, int] = FAST.encode_sections(
            records, start, out, self._flows, self._flow, dumps, topic, self._topic_cache(), prefix,
            max_size, framing, Message, buffer.routes, buffer.sealed, buffer.pool, limit,
            room_records, room_bytes,
        )  # fmt: skip
        return result

    def _topic_cache(self) -> dict[str, str]:
        """The C code's payload type -> topic cache (``topic_prefix`` mode), bounded."""
        if len(self._topics) >= self._max:
            self._topics.clear()
        return self._topics

    def encode(self, record: Record) -> tuple[bytes, int]:
        """The body of ``record`` and its key hash; the value encoder's errors pass through."""
        flow = self._flows.get(
            (  # _key(record), inlined: this runs once per record
                record.task_id,
                record.agent_id,
                record.pipeline_id,
                record.src_ip,
                record.dst_ip,
                record.src_port,
                record.dst_port,
                record.protocol,
                record.payload_type,
            )
        )
        if flow is None:
            flow = self._flow(record)
        stamp = b"%d" % (record.ts_ns // 1_000_000)
        if self._json:
            value = json_value(record, flow[3], flow[4], stamp)
        else:
            value = self._encoder.encode(record)
        return self._assemble(record, flow, value, stamp), flow[2]

    def with_value(self, record: Record, value: bytes) -> bytes:
        """The body of ``record`` with this value (a truncated one, say)."""
        flow = self._flows.get(self._key(record)) or self._flow(record)
        return self._assemble(record, flow, value, b"%d" % (record.ts_ns // 1_000_000))

    @staticmethod
    def _key(record: Record) -> tuple[Any, ...]:
        return (
            record.task_id,
            record.agent_id,
            record.pipeline_id,
            record.src_ip,
            record.dst_ip,
            record.src_port,
            record.dst_port,
            record.protocol,
            record.payload_type,
        )

    def _flow(self, record: Record) -> FlowParts:
        if len(self._flows) >= self._max:
            self._flows.clear()
        key = encode_key(record)
        headers = b"".join(
            [
                _header("task_id", record.task_id.encode()),
                _header("agent_id", record.agent_id.encode()),
                _header("payload_type", record.payload_type.encode()),
                _header("src_ip", record.src_ip.encode()),
                _header("dst_ip", record.dst_ip.encode()),
                _header("src_port", b"%d" % record.src_port),
                _header("dst_port", b"%d" % record.dst_port),
            ]
        )
        head, middle = json_flow_parts(record) if self._json else (b"", b"")
        parts = (varint(len(key)) + key, headers, key_hash(key), head, middle)
        self._flows[self._key(record)] = parts
        return parts

    def _assemble(self, record: Record, flow: FlowParts, value: bytes, stamp: bytes) -> bytes:
        """Key, value and the headers (flow ones, ``timestamp``, ``l.{label}``)."""
        labels = label_items(record)
        parts = [
            flow[0],
            varint(len(value)),
            value,
            varint(8 + len(labels)),
            flow[1],
            _TIMESTAMP_NAME,
            varint(len(stamp)),
            stamp,
        ]
        if labels:
            add = parts.append
            cached = self._labels.get
            for label in labels.items():
                header = cached(label)
                if header is None:
                    header = self._label(label)
                add(header)
        return b"".join(parts)

    def _label(self, label: tuple[str, str]) -> bytes:
        """``l.{name}: value`` encoded; cached, since label values repeat (methods, URIs, …)."""
        if len(self._labels) >= self._max:
            self._labels.clear()
        name, text = label
        header = self._labels[label] = _header("l." + name, text.encode())
        return header
