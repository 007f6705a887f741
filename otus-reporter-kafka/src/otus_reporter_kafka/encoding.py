"""The Kafka wire format of a record (design §4): key, headers and an encoded value.

The value goes through an :class:`Encoder` so that a binary format can follow JSON; key and
headers are fixed by the Go Otus, whose consumers must keep working. The reporter writes them
as bytes through :mod:`otus_reporter_kafka._records`; :func:`encode_headers` is the reference
that module is tested against.
"""

from __future__ import annotations

from binascii import b2a_base64
from typing import Any, Protocol

from orjson import dumps, loads

from otus import Record, record_to_dict

__all__ = [
    "Encoder",
    "JsonEncoder",
    "encode_headers",
    "encode_key",
    "json_flow_parts",
    "json_value",
    "label_items",
    "make_encoder",
]

Headers = tuple[tuple[str, bytes], ...]


class Encoder(Protocol):
    """Turns a record into a message value."""

    def encode(self, record: Record, raw_limit: int | None = None) -> bytes:
        """The value of ``record``; with ``raw_limit`` at most that many raw payload bytes go in
        (for truncation of oversized records), while ``raw_payload_len`` keeps the original."""
        ...


class JsonEncoder:
    """``record_to_dict(record)`` as compact UTF-8 JSON, byte for byte what
    ``orjson.dumps(record_to_dict(record))`` gives (orjson: ~5x the stdlib's speed).

    Without ``raw_limit`` the value is put together from parts: the fields that repeat per
    flow (ids, addresses, ports, protocol, payload type) are serialised by orjson once and
    cached (bounded); per record, orjson serialises only labels and payload. This halves the
    cost of a value (no dict per record)."""

    def __init__(self, max_cached: int = 16_384) -> None:
        self._flows: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
        self._max = max_cached

    def encode(self, record: Record, raw_limit: int | None = None) -> bytes:
        raw = record.raw_payload
        if raw_limit is not None and raw_limit < len(raw):
            return self._cut(record, raw_limit)
        flow = (
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
        parts = self._flows.get(flow)
        if parts is None:
            if len(self._flows) >= self._max:
                self._flows.clear()
            parts = self._flows[flow] = json_flow_parts(record)
        return json_value(record, parts[0], parts[1], b"%d" % (record.ts_ns // 1_000_000))

    def _cut(self, record: Record, raw_limit: int) -> bytes:
        full_len = len(record.raw_payload)
        cut = _with_raw(record, record.raw_payload[:raw_limit])
        shape: dict[str, Any] = record_to_dict(cut)
        shape["raw_payload_len"] = full_len
        return dumps(shape)


def json_value(record: Record, head: bytes, middle: bytes, stamp: bytes) -> bytes:
    """The JSON value of ``record`` from its flow's :func:`json_flow_parts` and its
    millisecond timestamp as decimal ``stamp``."""
    raw = record.raw_payload
    payload = record.serialized_payload()  # the parser's own JSON: no second serialisation
    labels = record.serialized_labels()  # likewise, and record.labels stays undecoded
    return b"".join(
        [
            head,
            stamp,
            middle,
            labels if labels is not None else dumps(record.labels),
            b',"raw_payload_len":%d,"raw_payload":"' % len(raw),
            b2a_base64(raw, newline=False),
            b'","payload":',
            payload if payload is not None else dumps(record.payload),
            b"}",
        ]
    )


def json_flow_parts(record: Record) -> tuple[bytes, bytes]:
    """The JSON before the timestamp value, and between it and the labels value (per flow)."""
    head = dumps(
        {
            "task_id": record.task_id,
            "agent_id": record.agent_id,
            "pipeline_id": record.pipeline_id,
        }
    )
    middle = dumps(
        {
            "src_ip": record.src_ip,
            "dst_ip": record.dst_ip,
            "src_port": record.src_port,
            "dst_port": record.dst_port,
            "protocol": record.protocol,
            "payload_type": record.payload_type,
        }
    )
    return head[:-1] + b',"timestamp":', b"," + middle[1:-1] + b',"labels":'


def _with_raw(record: Record, raw: bytes) -> Record:
    return Record(
        ts_ns=record.ts_ns,
        src_ip=record.src_ip,
        dst_ip=record.dst_ip,
        src_port=record.src_port,
        dst_port=record.dst_port,
        protocol=record.protocol,
        payload_type=record.payload_type,
        raw_payload=raw,
        payload=None if record.serialized_payload() is not None else record.payload,
        payload_json=record.serialized_payload(),
        labels=None if record.serialized_labels() is not None else record.labels,
        labels_json=record.serialized_labels(),
        task_id=record.task_id,
        agent_id=record.agent_id,
        pipeline_id=record.pipeline_id,
    )


def make_encoder(serialization: str) -> Encoder:
    """The encoder for the ``serialization`` option."""
    if serialization == "json":
        return JsonEncoder()
    raise ValueError(f"unknown serialization {serialization!r}")


def encode_key(record: Record) -> bytes:
    """``{src_ip}:{src_port}-{dst_ip}:{dst_port}``, as the Go Otus keys its messages."""
    return record.key.encode()


def encode_headers(record: Record) -> Headers:
    """The Go Otus headers in their order, then one ``l.{label}`` per label."""
    return _flow_headers(record) + _own_headers(record)


def _flow_headers(record: Record) -> Headers:
    return (
        ("task_id", record.task_id.encode()),
        ("agent_id", record.agent_id.encode()),
        ("payload_type", record.payload_type.encode()),
        ("src_ip", record.src_ip.encode()),
        ("dst_ip", record.dst_ip.encode()),
        ("src_port", b"%d" % record.src_port),
        ("dst_port", b"%d" % record.dst_port),
    )


def _own_headers(record: Record) -> Headers:
    stamp = (("timestamp", b"%d" % (record.ts_ns // 1_000_000)),)
    labels = label_items(record)
    if not labels:
        return stamp
    return stamp + tuple([("l." + name, value.encode()) for name, value in labels.items()])


def label_items(record: Record) -> dict[str, str]:
    """The labels for the ``l.{label}`` headers: the parser's serialised labels decoded into a
    dict of their own (``record.labels`` is left undecoded), else ``record.labels``. Serialised
    labels that are not a JSON object of strings are a ``ValueError`` (the record is dropped
    and counted as an encode error)."""
    raw = record.serialized_labels()
    if raw is None:
        return record.labels
    labels = loads(raw)
    if type(labels) is not dict or not all(type(value) is str for value in labels.values()):
        raise ValueError("serialized labels are not a JSON object of strings")
    return labels
