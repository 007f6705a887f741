"""Kafka record batches (format v2) built here from pre-encoded record bodies.

aiokafka's builder appends record by record in Python (~3 µs each) and compresses lz4 at level
9 (~4 µs a record more). Here ``report()`` encodes each record's body once (key, value,
headers: :mod:`otus_reporter_kafka._records`), and the sender joins bodies into the records
section, compresses it at a fast level, and hands aiokafka a :class:`PrebuiltBatch`: an object
with the methods of aiokafka's ``BatchBuilder`` that the producer calls. The bytes on the wire
are a standard RecordBatch; consumers see the same records as with aiokafka's own builder.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence

from aiokafka.record.util import calc_crc32c

from otus_reporter_kafka._buffer import Message, Section
from otus_reporter_kafka._codecs import Codec
from otus_reporter_kafka._native import FAST

__all__ = [
    "HEADER_SIZE",
    "PART_BYTES",
    "PrebuiltBatch",
    "build_batch_py",
    "records_section",
    "records_section_py",
    "varint",
]

#: RecordBatch header: base offset, length, leader epoch, magic, crc, attributes, last offset
#: delta, first and max timestamp, producer id and epoch, base sequence, record count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = _HEADER.size  # 61
_CRC_OFFSET = 17  # after base offset, length, leader epoch, magic
_ATTRIBUTES_OFFSET = 21  # the CRC covers everything from here on
_LENGTH_BASE = 12  # the length field counts the bytes after itself

#: Uncompressed bytes of a section written into the scratch and compressed at a time, when the
#: codec compresses part by part: ~1 MiB stays in this machine's per-core L2 cache between the
#: two (and is one lz4 block).
PART_BYTES = 1 << 20


def _encode_varint(value: int) -> bytes:
    """Kafka's varint: zigzag, then 7 bits a byte, least significant first."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: Varints of 0 … 16383 (lengths, offset and timestamp deltas are nearly always below).
_SMALL = 1 << 14
_VARINTS = tuple(_encode_varint(n) for n in range(_SMALL))


def varint(value: int) -> bytes:
    """The varint of ``value`` (table look-up for small non-negative values)."""
    if 0 <= value < _SMALL:
        return _VARINTS[value]
    return _encode_varint(value)


def records_section(messages: Sequence[Message], first_ts: int) -> tuple[bytes, int]:
    """The uncompressed records of a batch (per message body its length, attributes 0,
    timestamp delta and offset delta in front), and the batch's largest timestamp; in C when
    built (same bytes), else :func:`records_section_py`."""
    if FAST is not None and type(messages) is list:
        try:
            result: tuple[bytes, int] = FAST.records_section(messages, first_ts)
        except OverflowError:  # timestamps beyond 64 bits: Python's ints take them
            pass
        else:
            return result
    return records_section_py(messages, first_ts)


def records_section_py(messages: Sequence[Message], first_ts: int) -> tuple[bytes, int]:
    """:func:`records_section` in Python (the reference)."""
    table = _VARINTS
    small = _SMALL
    slow = _encode_varint
    parts: list[bytes] = []
    add = parts.append
    max_ts = first_ts
    for offset, (_, _, body, stamp, _, _) in enumerate(messages):
        delta = stamp - first_ts
        max_ts = max(max_ts, stamp)
        head = (
            b"\x00"
            + (table[delta] if 0 <= delta < small else slow(delta))
            + (table[offset] if offset < small else slow(offset))
        )
        size = len(head) + len(body)
        add(table[size] if size < small else slow(size))
        add(head)
        add(body)
    return b"".join(parts), max_ts


class PrebuiltBatch:
    """A finished record batch with the interface aiokafka's producer uses of its
    ``BatchBuilder`` (``send_batch`` accepts it): count, size, producer state, bytes."""

    def __init__(
        self,
        records: bytes,
        count: int,
        first_ts: int,
        max_ts: int,
        codec: int,
        raw_size: int | None = None,
    ) -> None:
        self._records = records
        self._count = count
        self._first_ts = first_ts
        self._max_ts = max_ts
        self._attributes = codec
        #: Length of the uncompressed records section (the sender's compression ratio).
        self.raw_size = len(records) if raw_size is None else raw_size
        self._producer = (-1, -1, 0)  # no idempotence: id, epoch, base sequence unset
        self._buffer: bytes | None = None

    @classmethod
    def build(
        cls,
        messages: Sequence[Message],
        codec: Codec | None,
        scratch: bytearray | None = None,
    ) -> PrebuiltBatch:
        """A batch of these messages' records, compressed when that makes it smaller.

        ``scratch``: a bytearray the caller keeps for all its batches. With the C path and a
        codec, the uncompressed section is written there instead of into a new object each
        batch (fresh pages cost ~0.8 µs a record in faults and cache misses), and compressed
        from there: part by part (:data:`PART_BYTES` each) when the codec can, so each part
        is compressed while still in the cache, else whole."""
        first = messages[0].timestamp_ms
        if (
            codec is not None
            and scratch is not None
            and FAST is not None
            and type(messages) is list
        ):
            with contextlib.suppress(OverflowError):  # beyond 64 bits: Python's ints below
                return cls._from_scratch(messages, codec, scratch, first)
        section, max_ts = records_section(messages, first)
        if codec is not None:
            packed = codec.whole(section)
            if len(packed) < len(section):
                return cls(packed, len(messages), first, max_ts, codec.attribute, len(section))
        return cls(section, len(messages), first, max_ts, 0)

    @classmethod
    def _from_scratch(
        cls, messages: list[Message], codec: Codec, scratch: bytearray, first: int
    ) -> PrebuiltBatch:
        assert FAST is not None
        sections_in = FAST.records_section_into
        if codec.stream is None:
            raw, max_ts, _ = sections_in(scratch, messages, first, 0, 1 << 62)
            with memoryview(scratch) as view:
                packed = codec.whole(view[:raw])
        else:
            frame = codec.stream()
            parts: list[bytes] = []
            raw, max_ts, start = 0, first, 0
            while start < len(messages):
                length, part_max, start = sections_in(scratch, messages, first, start, PART_BYTES)
                with memoryview(scratch) as view:  # released before the scratch may grow
                    parts.append(frame.compress(view[:length]))
                raw += length
                max_ts = max(max_ts, part_max)
            parts.append(frame.flush())
            packed = b"".join(parts)
        if len(packed) < raw:
            return cls(packed, len(messages), first, max_ts, codec.attribute, raw)
        section, max_ts = records_section(messages, first)  # incompressible: as it is
        return cls(section, len(messages), first, max_ts, 0)

    @classmethod
    def from_section(cls, section: Section, codec: Codec | None) -> PrebuiltBatch:
        """A batch of a section's records (written in place by ``report()``), compressed
        whole from the section's memory when that makes it smaller."""
        with memoryview(section) as view:
            raw = len(view)
            if codec is not None:
                packed = codec.whole(view)
                if len(packed) < raw:
                    return cls(
                        packed, section.count, section.first_ts, section.max_ts,
                        codec.attribute, raw,
                    )  # fmt: skip
            records = bytes(view)
        return cls(records, section.count, section.first_ts, section.max_ts, 0)

    # -- what aiokafka's MessageBatch and accumulator call -----------------------------------

    def record_count(self) -> int:
        return self._count

    def size(self) -> int:
        return HEADER_SIZE + len(self._records)

    def closed(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing can be added to a pre-built batch."""

    def _set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int
    ) -> None:
        self._producer = (producer_id, producer_epoch, base_sequence)
        self._buffer = None

    def _build(self) -> bytes:
        if self._buffer is None:
            producer_id, producer_epoch, base_sequence = self._producer
            fields = (
                self._records, self._attributes, self._count, self._first_ts, self._max_ts,
                producer_id, producer_epoch, base_sequence,
            )  # fmt: skip
            if FAST is not None:  # header, CRC-32C (SSE4.2) and records in one allocation
                with contextlib.suppress(OverflowError):  # out of range: Python's error below
                    self._buffer = FAST.batch(*fields)
            if self._buffer is None:
                self._buffer = build_batch_py(*fields)
        return self._buffer


def build_batch_py(
    records: bytes,
    attributes: int,
    count: int,
    first_ts: int,
    max_ts: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
) -> bytes:
    """The whole RecordBatch (header with its CRC-32C, then ``records``) in Python; the C
    ``batch()`` writes the same bytes."""
    header = bytearray(
        _HEADER.pack(
            0,  # base offset: the broker assigns it
            HEADER_SIZE - _LENGTH_BASE + len(records),
            -1,  # partition leader epoch
            2,  # magic
            0,  # crc, below
            attributes,
            count - 1,  # last offset delta
            first_ts,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
    )
    crc = calc_crc32c(bytes(header[_ATTRIBUTES_OFFSET:]) + records)
    struct.pack_into(">I", header, _CRC_OFFSET, crc)
    return bytes(header) + records
