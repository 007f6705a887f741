"""One record's Kafka body, encoded once in ``report()``: key, value and headers as bytes.

The body is a Kafka v2 record without its length, attributes, timestamp delta and offset
delta (those depend on the batch: :func:`otus_reporter_kafka._batch.records_section`). Key
and headers are those of :mod:`otus_reporter_kafka.encoding` (the Go Otus wire format);
the parts that repeat per flow (key, the seven flow headers, the key's murmur2 hash) and
per label name are encoded once and cached (bounded).
"""

from __future__ import annotations

from otus import Record
from otus_reporter_kafka._batch import varint
from otus_reporter_kafka.encoding import encode_key
from otus_reporter_kafka.partitioner import key_hash

__all__ = ["BodyEncoder", "FlowParts"]

#: key bytes with length, the seven flow headers, ``murmur2(key) & 0x7fffffff``.
FlowParts = tuple[bytes, bytes, int]

_TIMESTAMP_NAME = varint(len(b"timestamp")) + b"timestamp"


def _header(name: str, value: bytes) -> bytes:
    raw = name.encode()
    return varint(len(raw)) + raw + varint(len(value)) + value


def _flow_parts(record: Record) -> FlowParts:
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
    return varint(len(key)) + key, headers, key_hash(key)


class BodyEncoder:
    """Record bodies with per-flow and per-label parts cached (bounded)."""

    def __init__(self, max_cached: int = 16_384) -> None:
        self._flows: dict[tuple[str, int, str, int, str, str, str], FlowParts] = {}
        self._labels: dict[tuple[str, str], bytes] = {}
        self._max = max_cached

    def flow(self, record: Record) -> FlowParts:
        """The cached key, flow headers and key hash of ``record``'s flow."""
        flow = (
            record.src_ip,
            record.src_port,
            record.dst_ip,
            record.dst_port,
            record.payload_type,
            record.task_id,
            record.agent_id,
        )
        parts = self._flows.get(flow)
        if parts is None:
            if len(self._flows) >= self._max:
                self._flows.clear()
            parts = self._flows[flow] = _flow_parts(record)
        return parts

    def body(self, record: Record, flow: FlowParts, value: bytes) -> bytes:
        """Key, ``value`` and the headers (flow ones, ``timestamp``, ``l.{label}``)."""
        labels = record.labels
        stamp = b"%d" % (record.ts_ns // 1_000_000)
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
