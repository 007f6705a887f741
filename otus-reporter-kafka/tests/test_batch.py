"""The batches built here against aiokafka's own builder and reader, without a broker."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka_helpers import sip_record

from otus import Record
from otus_reporter_kafka._batch import CODECS, PrebuiltBatch, compressor, varint
from otus_reporter_kafka._buffer import Message
from otus_reporter_kafka._records import BodyEncoder
from otus_reporter_kafka.encoding import Encoder, JsonEncoder, encode_headers


def _records() -> list[Record]:
    records = [sip_record(i) for i in range(40)]
    records[3].labels["sip.from_display"] = "Zoë 東京"  # non-ASCII header value
    records[5].labels.clear()  # no labels: the eight fixed headers only
    records[7].ts_ns -= 5_000_000_000  # older than the first: a negative timestamp delta
    records[9] = sip_record(9, raw=bytes(range(256)) * 80)  # a body above 16 KiB
    return records


class _Fixed:
    """An encoder other than JSON: the body takes its value as it is."""

    def encode(self, record: Record, raw_limit: int | None = None) -> bytes:
        return b"<%d>" % record.src_port


def _ours(records: list[Record], codec: str, encoder: Encoder | None = None) -> PrebuiltBatch:
    bodies_of = BodyEncoder(encoder or JsonEncoder(), max_cached=4)
    messages = []
    for record in records:
        body, hashed = bodies_of.encode(record)
        messages.append(Message("t", hashed, body, record.ts_ns // 1_000_000, len(body), None))
    return PrebuiltBatch.build(messages, codec, compressor(codec))


def _aiokafka(records: list[Record], codec: str, encoder: Encoder | None = None) -> bytes:
    builder = DefaultRecordBatchBuilder(2, CODECS[codec], 0, -1, -1, 0, 1 << 30)
    values = encoder or JsonEncoder()
    for offset, record in enumerate(records):
        builder.append(
            offset,
            record.ts_ns // 1_000_000,
            record.key.encode(),
            values.encode(record),
            list(encode_headers(record)),
        )
    return bytes(builder.build())


def test_uncompressed_batch_is_byte_identical_to_aiokafkas() -> None:
    records = _records()
    assert _ours(records, "none")._build() == _aiokafka(records, "none")


def test_other_value_encoders_go_in_as_they_are() -> None:
    records = _records()
    assert _ours(records, "none", _Fixed())._build() == _aiokafka(records, "none", _Fixed())


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batch_reads_back_as_aiokafkas(codec: str) -> None:
    records = _records()
    ours = DefaultRecordBatch(_ours(records, codec)._build())
    theirs = DefaultRecordBatch(_aiokafka(records, codec))
    assert ours.validate_crc()
    assert ours.compression_type == CODECS[codec]
    for field in ("last_offset_delta", "first_timestamp", "max_timestamp", "producer_id"):
        assert getattr(ours, field) == getattr(theirs, field)
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in ours]
    want = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in theirs]
    assert len(got) == len(records)
    assert got == want


def test_producer_state_is_written_and_covered_by_the_crc() -> None:
    batch = _ours(_records()[:3], "lz4")
    batch._set_producer_state(1234, 5, 678)
    read = DefaultRecordBatch(batch._build())
    assert (read.producer_id, read.producer_epoch, read.base_sequence) == (1234, 5, 678)
    assert read.validate_crc()


def test_many_records_need_long_offset_varints() -> None:
    records = [sip_record(i % 7) for i in range(17_000)]
    assert _ours(records, "none")._build() == _aiokafka(records, "none")


@pytest.mark.parametrize("value", [0, 1, 63, 64, 8191, 8192, 16383, 16384, 1 << 40, -1, -65])
def test_varints_match_aiokafkas(value: int) -> None:
    from aiokafka.record.util import encode_varint

    out = bytearray()
    encode_varint(value, out.append)
    assert varint(value) == bytes(out)


def test_caches_are_bounded() -> None:
    encoder = BodyEncoder(JsonEncoder(), max_cached=4)
    for i in range(40):
        record = sip_record(i)
        record.labels[f"x.{i}"] = "v"
        encoder.encode(record)
    assert len(encoder._flows) <= 4
    assert len(encoder._labels) <= 4
