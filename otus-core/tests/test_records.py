"""Records: a payload or labels handed as JSON bytes are decoded on first read, and only then."""

from __future__ import annotations

import json

from otus import Record, record_to_dict


def _record(**kw: object) -> Record:
    return Record(
        ts_ns=1_700_000_000_123_456_789, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060,
        dst_port=5060, protocol=17, payload_type="sip", raw_payload=b"OPTIONS", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


PAYLOAD = {"kind": "request", "method": "OPTIONS", "via": [{"host": "zoë.example", "port": 5060}]}
SERIALIZED = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()


def test_serialized_payload_is_offered_until_read_then_decoded_once() -> None:
    record = _record(payload_json=SERIALIZED)
    assert record.serialized_payload() == SERIALIZED
    first = record.payload
    assert first == PAYLOAD
    assert record.payload is first  # decoded once
    assert record.serialized_payload() is None  # the dict may change from now on
    assert record_to_dict(record)["payload"] == PAYLOAD


def test_assigning_a_payload_drops_the_serialized_one() -> None:
    record = _record(payload_json=SERIALIZED)
    record.payload = {"kind": "other"}
    assert record.serialized_payload() is None
    assert record.payload == {"kind": "other"}


def test_a_dict_payload_wins_over_bytes_and_none_stays_none() -> None:
    assert _record(payload=PAYLOAD, payload_json=b'{"x":1}').serialized_payload() is None
    assert _record(payload=PAYLOAD, payload_json=b'{"x":1}').payload == PAYLOAD
    empty = _record()
    assert empty.payload is None
    assert empty.serialized_payload() is None


LABELS = {"sip.method": "OPTIONS", "sip.from_user": "zoë", "sip.note": 'say "hi"\n'}
SERIALIZED_LABELS = json.dumps(LABELS, ensure_ascii=False, separators=(",", ":")).encode()


def test_serialized_labels_are_offered_until_read_then_decoded_once() -> None:
    record = _record(labels_json=SERIALIZED_LABELS)
    assert record.serialized_labels() == SERIALIZED_LABELS
    first = record.labels
    assert first == LABELS
    assert record.labels is first
    assert record.serialized_labels() is None
    record.labels["task"] = "t1"  # changed in place, as processors and the run loop do
    assert record_to_dict(record)["labels"] == {**LABELS, "task": "t1"}


def test_assigning_labels_drops_the_serialized_ones() -> None:
    record = _record(labels_json=SERIALIZED_LABELS)
    record.labels = {"a": "b"}
    assert record.serialized_labels() is None
    assert record.labels == {"a": "b"}


def test_a_labels_dict_wins_over_bytes_and_no_labels_is_an_empty_dict() -> None:
    both = _record(labels={"a": "b"}, labels_json=SERIALIZED_LABELS)
    assert both.serialized_labels() is None
    assert both.labels == {"a": "b"}
    empty = _record()
    assert empty.serialized_labels() is None
    assert empty.labels == {}
    empty.labels["x"] = "y"
    assert empty.labels == {"x": "y"}
