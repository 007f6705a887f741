"""Key → partition exactly as Kafka's Java client (and aiokafka, librdkafka's murmur2, franz-go)
do it: ``(murmur2(key) & 0x7fffffff) % partitions``, so keyed consumers see the usual placement.

The reporter caches the hash per flow (:class:`otus_reporter_kafka._records.BodyEncoder`):
keys are flows and repeat a lot, and the pure Python murmur2 costs ~4 µs a call."""

from __future__ import annotations

from aiokafka.partitioner import murmur2

__all__ = ["key_hash"]


def key_hash(key: bytes) -> int:
    """``murmur2(key) & 0x7fffffff``: the partition is this modulo the partition count."""
    hashed: int = murmur2(key) & 0x7FFFFFFF
    return hashed
