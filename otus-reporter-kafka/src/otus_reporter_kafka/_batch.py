"""Kafka record batches (format v2) built here from pre-encoded record bodies.

aiokafka's builder appends record by record in Python (~3 µs each) and compresses lz4 at level
9 (~4 µs a record more). Here ``report()`` encodes each record's body once (key, value,
headers: :mod:`otus_reporter_kafka._records`), and the sender joins bodies into the records
section, compresses it at a fast level, and hands aiokafka a :class:`PrebuiltBatch`: an object
with the methods of aiokafka's ``BatchBuilder`` that the producer calls. The bytes on the wire
are a standard RecordBatch; consumers see the same records as with aiokafka's own builder.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from aiokafka.codec import gzip_encode, snappy_encode
from aiokafka.record.util import calc_crc32c

from otus_reporter_kafka._buffer import Message
from otus_reporter_kafka._native import FAST

__all__ = [
    "CODECS",
    "HEADER_SIZE",
    "PrebuiltBatch",
    "compressor",
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

#: Attribute bits of each codec (the timestamp type bit stays 0: CreateTime).
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


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


def _gzip(data: bytes) -> bytes:
    return bytes(gzip_encode(data))


def _snappy(data: bytes) -> bytes:
    return bytes(snappy_encode(data))


def compressor(codec: str) -> Callable[[bytes], bytes] | None:
    """The compression of the records section for ``codec`` (``None`` for "none").

    lz4 runs at level 1 (aiokafka uses 9: ~12x slower for ~35 % smaller batches), as a frame of
    independent blocks without content checksum (KIP-57); zstd at Kafka's default level 3."""
    if codec == "none":
        return None
    if codec == "gzip":
        return _gzip
    if codec == "snappy":
        return _snappy
    import cramjam

    if codec == "lz4":

        def lz4(data: bytes) -> bytes:
            frame = cramjam.lz4.Compressor(level=1, content_checksum=False, block_linked=False)
            frame.compress(data)
            return bytes(frame.finish())

        return lz4
    if codec == "zstd":
        return lambda data: bytes(cramjam.zstd.compress(data, level=3))
    raise ValueError(f"unknown compression {codec!r}")


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
    ) -> None:
        self._records = records
        self._count = count
        self._first_ts = first_ts
        self._max_ts = max_ts
        self._attributes = codec
        self._producer = (-1, -1, 0)  # no idempotence: id, epoch, base sequence unset
        self._buffer: bytes | None = None

    @classmethod
    def build(
        cls,
        messages: Sequence[Message],
        codec: str,
        compress: Callable[[bytes], bytes] | None,
    ) -> PrebuiltBatch:
        """A batch of these messages' records, compressed when that makes it smaller."""
        first = messages[0].timestamp_ms
        section, max_ts = records_section(messages, first)
        attributes = 0
        if compress is not None:
            packed = compress(section)
            if len(packed) < len(section):
                section, attributes = packed, CODECS[codec]
        return cls(section, len(messages), first, max_ts, attributes)

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
            header = bytearray(
                _HEADER.pack(
                    0,  # base offset: the broker assigns it
                    HEADER_SIZE - _LENGTH_BASE + len(self._records),
                    -1,  # partition leader epoch
                    2,  # magic
                    0,  # crc, below
                    self._attributes,
                    self._count - 1,  # last offset delta
                    self._first_ts,
                    self._max_ts,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    self._count,
                )
            )
            crc = calc_crc32c(bytes(header[_ATTRIBUTES_OFFSET:]) + self._records)
            struct.pack_into(">I", header, _CRC_OFFSET, crc)
            self._buffer = bytes(header) + self._records
        return self._buffer
