"""The batches built here against aiokafka's own builder and reader, without a broker."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka_helpers import sip_record

from otus import Record
from otus.testing import need
from otus_reporter_kafka._batch import PART_BYTES, PrebuiltBatch, build_batch_py, varint
from otus_reporter_kafka._buffer import Message
from otus_reporter_kafka._codecs import CODECS, Codec, codec
from otus_reporter_kafka._native import FAST
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


def _messages(records: list[Record], encoder: Encoder | None = None) -> list[Message]:
    bodies_of = BodyEncoder(encoder or JsonEncoder(), max_cached=4)
    messages = []
    for record in records:
        body, hashed = bodies_of.encode(record)
        messages.append(Message("t", hashed, body, record.ts_ns // 1_000_000, len(body), None))
    return messages


def _ours(
    records: list[Record],
    name: str,
    encoder: Encoder | None = None,
    scratch: bytearray | None = None,
) -> PrebuiltBatch:
    return PrebuiltBatch.build(_messages(records, encoder), codec(name), scratch)


def _aiokafka(records: list[Record], name: str, encoder: Encoder | None = None) -> bytes:
    builder = DefaultRecordBatchBuilder(2, CODECS[name], 0, -1, -1, 0, 1 << 30)
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


@pytest.mark.parametrize("scratch", [False, True], ids=["own-section", "scratch"])
@pytest.mark.parametrize("name", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batch_reads_back_as_aiokafkas(name: str, scratch: bool) -> None:
    """Also with the section written into the sender's reused scratch (the C path): a
    smaller batch after a larger one reads only its own part of the scratch."""
    records = _records()
    reused = bytearray(b"stale" * 100_000) if scratch else None
    ours = DefaultRecordBatch(_ours(records, name, scratch=reused)._build())
    theirs = DefaultRecordBatch(_aiokafka(records, name))
    assert ours.validate_crc()
    assert ours.compression_type == CODECS[name]
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


@pytest.mark.parametrize(
    ("codec", "producer"), [(0, (-1, -1, 0)), (3, (1234, 5, 678)), (4, (2**62, 32767, 2**31 - 1))]
)
def test_native_batch_header_and_crc_match_python(codec: int, producer: tuple[int, ...]) -> None:
    need(FAST is not None, "the C extension _kafka_fast is not built (needs a C compiler)")
    assert FAST is not None
    section = bytes(range(256)) * 33 + b"tail"
    args = (section, codec, 40, 1_700_000_000_000, 1_700_000_000_999, *producer)
    assert FAST.batch(*args) == build_batch_py(*args)
    read = DefaultRecordBatch(FAST.batch(*args))
    assert read.validate_crc()
    assert (read.producer_id, read.producer_epoch, read.base_sequence) == producer


def test_header_fields_out_of_range_fail_as_in_python() -> None:
    """A timestamp beyond 64 bits cannot go in a batch header: the C path leaves it to Python,
    whose error it is (as before there was a C path)."""
    import struct

    batch = PrebuiltBatch(b"records", 1, 2**63, 2**63, CODECS["none"])
    with pytest.raises(struct.error):
        batch._build()


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 63, 4097])
def test_native_crc32c_is_aiokafkas(size: int) -> None:
    from aiokafka.record.util import calc_crc32c

    need(FAST is not None, "the C extension _kafka_fast is not built (needs a C compiler)")
    assert FAST is not None
    data = bytes((i * 131 + 7) & 0xFF for i in range(size))
    assert FAST.crc32c(data) == calc_crc32c(data)


def test_lz4_frames_are_what_kafka_reads() -> None:
    """One frame of independent blocks (KIP-57), no content size or checksum, a block size
    Kafka's readers accept (64 KiB to 4 MiB); with lz4 installed 1 MiB blocks without block
    checksums (cramjam's fallback frames carry them, as aiokafka's own do: Kafka reads both)."""
    import importlib.util

    lz4 = codec("lz4")
    assert lz4 is not None
    frame = lz4.whole(b"".join(b"record %d with some text; " % i for i in range(40_000)))
    assert frame[:4] == b"\x04\x22\x4d\x18"  # magic
    flg, bd = frame[4], frame[5]
    assert flg >> 6 == 1  # version 01
    assert flg & 0x20  # block independence
    assert not flg & 0x0C  # no content size, no content checksum
    assert 4 <= bd >> 4 <= 7
    if importlib.util.find_spec("lz4") is not None:
        assert not flg & 0x10  # no block checksums
        assert bd >> 4 == 6  # 1 MiB


@pytest.mark.parametrize("scratch", [False, True], ids=["own-section", "scratch"])
@pytest.mark.parametrize("name", ["lz4", "zstd"])
def test_cramjam_compression_when_lz4_or_zstandard_is_missing(
    name: str, scratch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the ``lz4``/``zstandard`` packages the sender compresses with cramjam: the
    batch still reads back with every record."""
    import sys

    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    records = _records()
    ours = DefaultRecordBatch(
        _ours(records, name, scratch=bytearray() if scratch else None)._build()
    )
    assert ours.compression_type == CODECS[name]
    theirs = DefaultRecordBatch(_aiokafka(records, name))
    assert [(r.key, r.value, list(r.headers)) for r in ours] == [
        (r.key, r.value, list(r.headers)) for r in theirs
    ]


@pytest.mark.parametrize("scratch", [False, True], ids=["own-section", "scratch"])
def test_a_section_compression_does_not_shrink_goes_uncompressed(scratch: bool) -> None:
    """When the compressed section is not smaller the batch carries the section as it is:
    the same bytes as an uncompressed batch of the same records (also from the scratch,
    and with the compressor handed a view of the scratch, not a copy)."""
    records = _records()[:5]
    messages = _messages(records)
    seen: list[type] = []

    def inflate(section: bytes) -> bytes:
        seen.append(type(section))
        return bytes(section) + b"more"

    reused = bytearray(b"stale" * 10_000) if scratch else None
    batch = PrebuiltBatch.build(messages, Codec("lz4", CODECS["lz4"], inflate), reused)
    assert batch._attributes == 0
    assert batch._build() == _ours(records, "none")._build()
    native = scratch and FAST is not None
    assert seen == [memoryview if native else bytes]


@pytest.mark.parametrize("name", ["lz4", "zstd"])
def test_a_section_of_many_parts_is_one_frame_with_every_record(name: str) -> None:
    """Over :data:`PART_BYTES` of records: written and compressed part by part (when the
    package streams), still one frame that reads back as aiokafka's batch of the same
    records."""
    records = [sip_record(i, raw=bytes(range(256)) * 12) for i in range(1000)]
    ours = _ours(records, name, scratch=bytearray())
    assert ours.raw_size > 2 * PART_BYTES
    read = DefaultRecordBatch(ours._build())
    assert read.validate_crc()
    assert read.compression_type == CODECS[name]
    theirs = DefaultRecordBatch(_aiokafka(records, name))
    assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in read] == [
        (r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in theirs
    ]


@pytest.mark.parametrize(
    ("name", "levels"), [("gzip", [1, 9]), ("lz4", [-64, -4, 0, 9, 16]), ("zstd", [-7, -1, 1, 19])]
)
def test_compression_levels_give_batches_that_read_back(name: str, levels: list[int]) -> None:
    """Every level in range makes a batch with every record (part by part or whole); a
    faster level does not make a smaller one here."""
    records = [sip_record(i) for i in range(300)]
    sizes = []
    for level in levels:
        batch = PrebuiltBatch.build(_messages(records), codec(name, level), bytearray())
        read = DefaultRecordBatch(batch._build())
        assert read.compression_type == CODECS[name]
        assert [r.value for r in read] == [
            r.value for r in DefaultRecordBatch(_aiokafka(records, name))
        ]
        sizes.append(batch.size())
    assert sizes[0] >= sizes[-1]


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
