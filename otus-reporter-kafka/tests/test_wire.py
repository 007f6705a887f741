"""Key, headers, value and partition of one record, without a broker."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka_helpers import sip_record

from otus import Record, record_to_dict
from otus_reporter_kafka._records import BodyEncoder
from otus_reporter_kafka.encoding import JsonEncoder, encode_headers, encode_key
from otus_reporter_kafka.partitioner import key_hash


def test_value_is_the_json_of_record_to_dict() -> None:
    record = sip_record(5)
    assert json.loads(JsonEncoder().encode(record)) == record_to_dict(record)


def _serialized_twin(record: Record) -> Record:
    """The same record as a parser that hands its payload as JSON bytes would build it."""
    return Record(
        ts_ns=record.ts_ns, src_ip=record.src_ip, dst_ip=record.dst_ip, src_port=record.src_port,
        dst_port=record.dst_port, protocol=record.protocol, payload_type=record.payload_type,
        raw_payload=record.raw_payload, payload_json=orjson.dumps(record.payload),
        labels=record.labels, task_id=record.task_id, agent_id=record.agent_id,
        pipeline_id=record.pipeline_id,
    )  # fmt: skip


def test_a_serialized_payload_is_copied_into_the_same_value() -> None:
    record = sip_record(4)
    twin = _serialized_twin(record)
    for raw_limit in (None, 3):
        assert JsonEncoder().encode(twin, raw_limit) == JsonEncoder().encode(record, raw_limit)
    assert BodyEncoder(JsonEncoder()).encode(twin) == BodyEncoder(JsonEncoder()).encode(record)
    assert twin.serialized_payload() is not None  # copied, never decoded


def test_non_ascii_labels_stay_utf8() -> None:
    record = sip_record(1)
    record.labels["sip.from_display"] = "Zoë 東京"
    value = JsonEncoder().encode(record)
    assert "Zoë 東京".encode() in value
    assert ("l.sip.from_display", "Zoë 東京".encode()) in encode_headers(record)


def test_truncation_keeps_the_original_length() -> None:
    record = sip_record(2, raw=b"0123456789" * 10)
    value = json.loads(JsonEncoder().encode(record, raw_limit=30))
    assert base64.b64decode(value["raw_payload"]) == record.raw_payload[:30]
    assert value["raw_payload_len"] == 100
    assert json.loads(JsonEncoder().encode(record, raw_limit=1000)) == record_to_dict(record)


def test_key_and_headers() -> None:
    record = sip_record(3)
    assert encode_key(record) == b"10.0.0.1:5063-10.0.0.2:5060"
    assert list(encode_headers(record)[:8]) == [
        ("task_id", b"task-1"),
        ("agent_id", b"node-a"),
        ("payload_type", b"sip"),
        ("src_ip", b"10.0.0.1"),
        ("dst_ip", b"10.0.0.2"),
        ("src_port", b"5063"),
        ("dst_port", b"5060"),
        ("timestamp", b"1700000000126"),
    ]


# Kafka's own murmur2 test vectors (clients/.../UtilsTest.java), as signed 32-bit ints.
@pytest.mark.parametrize(
    ("key", "signed"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_partition_is_javas_murmur2(key: bytes, signed: int) -> None:
    assert key_hash(key) == signed & 0x7FFFFFFF


def test_flow_cache_holds_the_key_hash() -> None:
    encoder = BodyEncoder(JsonEncoder(), max_cached=4)
    for i in range(40):
        record = sip_record(i)
        assert encoder.encode(record)[1] == key_hash(encode_key(record))
        assert encoder.encode(record)[1] == key_hash(encode_key(record))  # cached
    assert len(encoder._flows) <= 4


_text = st.text(max_size=12)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    ids=st.tuples(_text, _text, st.integers(0, 2**31)),
    ips=st.tuples(_text, _text),
    ports=st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
    ts_ns=st.integers(0, 2**63 - 1),
    raw=st.binary(max_size=64),
    labels=st.dictionaries(_text, _text, max_size=4),
    payload=st.none() | st.dictionaries(_text, _json_values, max_size=4),
)
def test_value_is_byte_for_byte_orjson_of_record_to_dict(
    ids: tuple[str, str, int],
    ips: tuple[str, str],
    ports: tuple[int, int],
    ts_ns: int,
    raw: bytes,
    labels: dict[str, str],
    payload: dict[str, object] | None,
) -> None:
    record = Record(
        ts_ns=ts_ns,
        src_ip=ips[0],
        dst_ip=ips[1],
        src_port=ports[0],
        dst_port=ports[1],
        protocol=17,
        payload_type=ids[0][:3] or "sip",
        raw_payload=raw,
        payload=payload,
        labels=labels,
        task_id=ids[0],
        agent_id=ids[1],
        pipeline_id=ids[2],
    )
    encoder = JsonEncoder(max_cached=8)
    want = orjson.dumps(record_to_dict(record))
    assert encoder.encode(record) == want
    assert encoder.encode(record) == want  # from the flow cache
    # the reporter assembles the value inside the record body: the same bytes go in
    fused = BodyEncoder(JsonEncoder(max_cached=8), max_cached=8)
    assert fused.encode(record)[0] == _reference_bodies.with_value(record, want)


class _Reference:
    def encode(self, record: Record, raw_limit: int | None = None) -> bytes:
        return orjson.dumps(record_to_dict(record))


_reference_bodies = BodyEncoder(_Reference())
