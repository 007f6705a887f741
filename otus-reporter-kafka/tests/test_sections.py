"""Records written straight into their partition's section (C) against the Message path.

A reporter that is not started keeps what ``report()`` hands over in its buffer; routes are
installed by hand here, as the sender does once it knows a topic's partitions. The sections
must hold byte for byte the records section the Message path builds for the same records of
the same partition (``records_section_py``, the reference)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.record.default_records import DefaultRecordBatch
from kafka_helpers import sip_record

from otus import PluginContext, Record
from otus.testing import need
from otus_reporter_kafka._batch import HEADER_SIZE, PrebuiltBatch, records_section_py
from otus_reporter_kafka._buffer import Message, Section
from otus_reporter_kafka._codecs import codec
from otus_reporter_kafka._native import FAST
from otus_reporter_kafka.options import KafkaReporterOptions
from otus_reporter_kafka.reporter import KafkaReporter


@pytest.fixture(autouse=True)
def _built() -> None:
    need(FAST is not None, "the C extension _kafka_fast is not built (needs a C compiler)")


def _reporter(native: bool = True, **options: Any) -> KafkaReporter:
    opts = KafkaReporterOptions.model_validate({"brokers": ["127.0.0.1:1"], **options})
    return KafkaReporter(opts, PluginContext(), native=native)


def _records(n: int) -> list[Record]:
    records = [sip_record(i) for i in range(n)]
    if n > 5:
        records[3].ts_ns -= 5_000_000_000  # older than the first: a negative timestamp delta
        records[5].labels.clear()
    return records


def _reference(records: list[Record], partitions: int, **options: Any) -> list[list[Message]]:
    """The Python path's messages of ``records``, per partition index (hash % count)."""
    slow = _reporter(False, **options)
    slow.report(records)
    groups: list[list[Message]] = [[] for _ in range(partitions)]
    for message in slow._buffer.take_all():
        groups[message.hashed % partitions].append(message)
    return groups


def _sections(records: list[Record], partitions: list[int], **options: Any) -> list[Section]:
    fast = _reporter(True, **options)
    assert fast._sectioned
    fast._buffer.install_routes(options.get("topic", "t"), partitions)
    fast.report(records)
    assert fast._buffer.take_all() == []  # all of them went into sections
    return fast._buffer.take_sections()


def _same(section: Section, messages: list[Message]) -> None:
    first = messages[0].timestamp_ms
    expected, max_ts = records_section_py(messages, first)
    assert bytes(memoryview(section)) == expected
    assert (section.count, section.first_ts, section.max_ts) == (len(messages), first, max_ts)
    assert section.held == sum(m.size for m in messages)
    assert section.nbytes == len(expected)


def test_sections_hold_the_records_section_of_each_partition() -> None:
    records = _records(60)
    sections = _sections(records, [0, 1, 2], topic="t")
    reference = _reference(records, 3, topic="t")
    assert sorted(s.partition for s in sections) == [0, 1, 2]
    for section in sections:
        assert section.topic == "t"
        _same(section, reference[section.partition])


def test_full_sections_are_sealed_at_about_a_batch() -> None:
    """``batch_size`` 4 KiB: each section holds at most the limit (or one record), and the
    sections of a partition, in order, hold its records in order."""
    records = _records(80)
    sections = _sections(records, [0, 1], topic="t", batch_size=4096)
    reference = _reference(records, 2, topic="t", batch_size=4096)
    limit = 4096 - HEADER_SIZE
    assert len(sections) > 2
    for partition in (0, 1):
        mine = [s for s in sections if s.partition == partition]
        at = 0
        for section in mine:
            assert section.nbytes <= limit or section.count == 1
            _same(section, reference[partition][at : at + section.count])
            at += section.count
        assert at == len(reference[partition])


def test_a_split_section_is_two_batches_of_its_records() -> None:
    records = _records(11)
    (section,) = _sections(records, [0], topic="t")
    (messages,) = _reference(records, 1, topic="t")
    held = section.held
    rest = section.split()
    _same(section, messages[:5])
    assert (rest.count, rest.topic, rest.partition) == (6, "t", 0)
    expected, max_ts = records_section_py(messages[5:], messages[5].timestamp_ms)
    assert bytes(memoryview(rest)) == expected
    assert (rest.first_ts, rest.max_ts) == (messages[5].timestamp_ms, max_ts)
    assert section.held + rest.held == held
    one = rest.split().split()  # 6 -> 3 + 3 -> 1 + 2 ... down to one record
    with pytest.raises(ValueError, match="fewer than two"):
        (one if one.count == 1 else one.split()).split()


def test_an_exported_section_takes_nothing_more() -> None:
    (section,) = _sections(_records(6), [0], topic="t")
    with memoryview(section) as view:
        assert len(view) == section.nbytes
        assert view.readonly
        with pytest.raises(BufferError):
            section.append(b"body", 1, 10)
        with pytest.raises(BufferError):
            section.split()
        with pytest.raises(BufferError):
            section.reset()
    section.reset("u", 7)
    assert (section.count, section.nbytes, section.held, section.topic) == (0, 0, 0, "u")
    assert section.partition == 7
    assert section.capacity > 0


def test_batches_of_sections_read_back_with_aiokafka() -> None:
    records = _records(30)
    for name in ("none", "lz4", "zstd", "gzip"):
        (section,) = _sections(records, [0], topic="t")
        batch = PrebuiltBatch.from_section(section, codec(name))
        read = DefaultRecordBatch(bytearray(batch._build()))
        assert read.validate_crc()
        got = list(read)
        assert len(got) == 30
        assert [r.key for r in got] == [r.key.encode() for r in records]
        assert [r.offset for r in got] == list(range(30))
        assert [r.timestamp for r in got] == [r.ts_ns // 1_000_000 for r in records]


def test_a_full_buffer_refuses_records_into_sections_too() -> None:
    fast = _reporter(True, topic="t", buffer_records=5)
    fast._buffer.install_routes("t", [0])
    fast.report(_records(20))
    (section,) = fast._buffer.take_sections()
    assert section.count == 5
    stats = fast.stats()
    assert (stats["dropped.buffer_full"], stats["buffer_records"]) == (15, 5)


def test_records_the_c_path_leaves_go_into_their_section_in_order() -> None:
    """An oversized record cut to fit (Python path, ``route()``) lands between its
    neighbours, as on the Message path."""
    records = _records(12)
    records[4] = sip_record(4, raw=bytes(range(256)) * 40)
    options = {"topic": "t", "max_message_bytes": 4096, "oversize": "truncate"}
    (section,) = _sections(records, [0], **options)
    (messages,) = _reference(records, 1, **options)
    assert len(messages) == 12
    _same(section, messages)


def test_a_topic_without_a_route_gets_messages() -> None:
    records = [sip_record(i) for i in range(6)]
    records += [sip_record(i, payload_type="rtp") for i in range(4)]
    fast = _reporter(True, topic_prefix="p")
    fast._buffer.install_routes("p-sip", [0])
    fast.report(records)
    messages = fast._buffer.take_all()
    (section,) = fast._buffer.take_sections()
    assert section.count == 6
    assert section.topic == "p-sip"
    assert [m.topic for m in messages] == ["p-rtp"] * 4
    assert fast.stats()["buffer_records"] == 10


def test_new_partitions_seal_the_open_sections() -> None:
    fast = _reporter(True, topic="t")
    buffer = fast._buffer
    buffer.install_routes("t", [0])
    fast.report(_records(4))
    buffer.install_routes("t", [0])  # the same: nothing changes
    assert buffer.sealed == []
    buffer.install_routes("t", [0, 1])
    assert [s.count for s in buffer.sealed] == [4]
    fast.report(_records(10))
    assert sorted(s.partition for s in buffer.take_sections()) == [0, 0, 1]


def test_idle_sections_are_reused_within_buffer_bytes() -> None:
    fast = _reporter(True, topic="t", buffer_bytes=2**20, batch_size=2**18)
    buffer = fast._buffer
    buffer.install_routes("t", [0])
    fast.report(_records(2000))  # what fits in 1 MiB, in sections of ~256 KiB
    taken = buffer.take_sections()
    assert len(taken) > 3
    for section in taken:  # delivered: released, then offered for reuse
        buffer.release(section.count, section.held)
        buffer.recycle(section)
    idle = sum(s.capacity for s in buffer.pool)
    assert 0 < idle <= buffer.max_bytes
    assert all(s.count == 0 for s in buffer.pool)
    pooled = len(buffer.pool)
    fast.report(_records(10))
    (again,) = buffer.take_sections()  # the open one: its replacement comes from the pool
    assert again.count == 10
    assert len(buffer.pool) == pooled - 1


def test_records_in_sections_count_as_queued_until_taken() -> None:
    """The sender's linger and its idle checks see records in sections as queued."""
    fast = _reporter(True, topic="t")
    buffer = fast._buffer
    buffer.install_routes("t", [0, 1])
    assert (buffer.queued, buffer.queued_since) == (0, None)
    fast.report(_records(30))
    assert buffer.queued == 30
    assert buffer.queued_since is not None
    assert buffer.queued_bytes() == buffer.held_bytes
    taken = buffer.take_sections()
    assert sum(s.count for s in taken) == 30
    assert (buffer.queued, buffer.queued_since) == (0, None)
    assert buffer.held_records == 30  # in flight until released
    for section in taken:
        buffer.release(section.count, section.held)
    assert (buffer.held_records, buffer.held_bytes) == (0, 0)
