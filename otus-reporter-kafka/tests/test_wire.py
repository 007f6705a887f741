"""Key, headers, value and partition of one record, without a broker."""

from __future__ import annotations

import base64
import json

import pytest
from kafka_helpers import sip_record

from otus import record_to_dict
from otus_reporter_kafka._records import BodyEncoder
from otus_reporter_kafka.encoding import JsonEncoder, encode_headers, encode_key
from otus_reporter_kafka.partitioner import key_hash


def test_value_is_the_json_of_record_to_dict() -> None:
    record = sip_record(5)
    assert json.loads(JsonEncoder().encode(record)) == record_to_dict(record)


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
    encoder = BodyEncoder(max_cached=4)
    for i in range(40):
        record = sip_record(i)
        assert encoder.flow(record)[2] == key_hash(encode_key(record))
        assert encoder.flow(record)[2] == key_hash(encode_key(record))  # cached
    assert len(encoder._flows) <= 4
