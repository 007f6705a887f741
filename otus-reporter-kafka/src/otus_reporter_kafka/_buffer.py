"""The bounded hand-over between ``report()`` (pipeline thread) and the sender thread.

Limits count everything the reporter holds, queued or in flight, so memory stays bounded
while the broker is away. A full buffer refuses new messages (tail drop): what is already
queued is older and goes out first when the broker returns.

Records arrive in one of two forms. With the C encoding, once the sender knows a topic's
partitions (:meth:`Buffer.install_routes`), ``report()`` writes each record straight into the
open :class:`Section` of its partition (``routes``): a section that is full (about a batch)
is sealed, and the sender takes sealed and open sections whole, each one record batch. Else
(the Python encoding, a topic not routed yet, a fallback reporter that needs the records
themselves) each record is a :class:`Message` in the queue, grouped into batches by the
sender.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple, Protocol

from otus import Record
from otus_reporter_kafka._native import FAST

__all__ = ["Buffer", "Message", "Section"]

#: Most idle sections kept for reuse (see :meth:`Buffer.recycle`).
_POOL = 64


class Message(NamedTuple):
    """One encoded record on its way to Kafka; ``record`` is kept only for a fallback.

    ``body`` is the record's key, value and headers in Kafka's record encoding
    (:mod:`otus_reporter_kafka._records`); ``hashed`` is the key's murmur2 hash."""

    topic: str
    hashed: int
    body: bytes
    timestamp_ms: int
    size: int
    record: Record | None


class Section(Protocol):
    """What the sender uses of a C ``Section`` (``_kafka_fast.Section``): one partition's
    records section, framed as in a record batch and written in place; read through the
    buffer protocol (``memoryview(section)``)."""

    @property
    def count(self) -> int: ...
    @property
    def held(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def first_ts(self) -> int: ...
    @property
    def max_ts(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    def append(self, body: bytes, ts_ms: int, held: int) -> None: ...
    def split(self) -> Section: ...
    def reset(self, topic: str | None = None, partition: int | None = None) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...


class Buffer:
    """Thread-safe bounded queue with held-record and held-byte accounting."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.held_records = 0
        self.held_bytes = 0
        #: ``time.monotonic()`` when the oldest queued message was queued (about: the time of
        #: the first offer into an empty queue), ``None`` while nothing is queued.
        self.queued_since: float | None = None
        self._queue: deque[Message] = deque()
        self.lock = threading.Lock()
        self._emptied = threading.Condition(self.lock)
        self._freed = threading.Condition(self.lock)  # held records left: room for more
        #: topic -> the open section of each of its partitions (index: key hash % count)
        self.routes: dict[str, list[Section]] = {}
        #: full sections, oldest first, waiting for the sender
        self.sealed: list[Section] = []
        #: idle sections to reuse (reset)
        self.pool: list[Section] = []
        self._section_records = 0  # records in sections not taken yet

    def offer(self, messages: list[Message], nbytes: int) -> int:
        """Queue what fits; return how many were refused."""
        with self.lock:
            if (
                self.held_records + len(messages) <= self.max_records
                and self.held_bytes + nbytes <= self.max_bytes
            ):
                if not self._queue:
                    self.queued_since = time.monotonic()
                self._queue.extend(messages)
                self.held_records += len(messages)
                self.held_bytes += nbytes
                return 0
            if not self._queue:
                self.queued_since = time.monotonic()
            refused = 0
            for message in messages:
                if (
                    self.held_records < self.max_records
                    and self.held_bytes + message.size <= self.max_bytes
                ):
                    self._queue.append(message)
                    self.held_records += 1
                    self.held_bytes += message.size
                else:
                    refused += 1
            return refused

    @property
    def queued(self) -> int:
        """Records not taken by the sender yet."""
        return len(self._queue) + self._section_records

    def queued_bytes(self) -> int:
        """About how many bytes are queued (not in flight): the queued records at the mean
        held size."""
        held = self.held_records
        return self.queued * self.held_bytes // held if held else 0

    def take(self, max_records: int) -> list[Message]:
        """Move up to ``max_records`` from the queue to in flight (still held)."""
        with self.lock:
            queue = self._queue
            if max_records >= len(queue):
                out = list(queue)
                queue.clear()
                if not self._section_records:
                    self.queued_since = None
                return out
            pop = queue.popleft
            return [pop() for _ in range(max_records)]  # the rest keeps its queued_since

    def take_all(self) -> list[Message]:
        with self.lock:
            out = list(self._queue)
            self._queue.clear()
            if not self._section_records:
                self.queued_since = None
            return out

    # -- sections (the C encoding; see the module's docstring) -----------------------------

    def room(self) -> tuple[int, int]:
        """Records and held bytes the buffer still takes (caller holds :attr:`lock`)."""
        return self.max_records - self.held_records, self.max_bytes - self.held_bytes

    def added(self, records: int, nbytes: int) -> None:
        """Records were written into sections (caller holds :attr:`lock`)."""
        if records:
            if not self._queue and not self._section_records:
                self.queued_since = time.monotonic()
            self._section_records += records
            self.held_records += records
            self.held_bytes += nbytes

    def take_sections(self) -> list[Section]:
        """Sealed sections and the open ones that hold records (replaced by empty ones),
        oldest first, moved to in flight (still held)."""
        with self.lock:
            out, self.sealed = self.sealed, []
            for sections in self.routes.values():
                for index, section in enumerate(sections):
                    if section.count:
                        out.append(section)
                        sections[index] = self._fresh(section.topic, section.partition)
            self._section_records = 0
            if not self._queue:
                self.queued_since = None
            return out

    def install_routes(self, topic: str, partitions: list[int]) -> None:
        """Route the records of ``topic`` to these partitions (sorted ids) from now on; the
        open sections of a previous set are sealed."""
        with self.lock:
            old = self.routes.get(topic)
            if old is not None and [s.partition for s in old] == partitions:
                return
            for section in old or ():
                if section.count:
                    self.sealed.append(section)
            self.routes[topic] = [self._fresh(topic, p) for p in partitions]

    def recycle(self, section: Section) -> None:
        """A section left the reporter: keep it for reuse, its memory allocated and paged in
        (a new ~2 MiB section faults in fresh pages: ~0.4 µs a record), as far as the held
        records and the idle sections together stay within ``max_bytes``."""
        with self.lock:
            idle = sum(s.capacity for s in self.pool)
            if (
                len(self.pool) < _POOL
                and self.held_bytes + idle + section.capacity <= self.max_bytes
            ):
                section.reset()
                self.pool.append(section)

    def _fresh(self, topic: str, partition: int) -> Section:
        if self.pool:
            section = self.pool.pop()
            section.reset(topic, partition)
            return section
        assert FAST is not None
        fresh: Section = FAST.Section(topic, partition)
        return fresh

    def release(self, records: int, nbytes: int) -> None:
        """Messages left the reporter (delivered, failed or dropped)."""
        with self.lock:
            self.held_records -= records
            self.held_bytes -= nbytes
            if self.held_records == 0:
                self._emptied.notify_all()
            self._freed.notify_all()

    def wait_for_room(self, records: int, timeout: float) -> bool:
        """Block until ``records`` more fit (their bytes estimated at the mean held size) or
        nothing is held, at most ``timeout`` seconds; ``True`` when they fit."""

        def room() -> bool:
            held = self.held_records
            if held == 0:
                return True
            estimate = records * (self.held_bytes // held)
            return (
                held + records <= self.max_records and self.held_bytes + estimate <= self.max_bytes
            )

        with self.lock:
            return self._freed.wait_for(room, max(timeout, 0.0))

    def wait_empty(self, timeout: float) -> bool:
        """Block until nothing is held or ``timeout`` passes; ``True`` when empty."""
        with self.lock:
            return self._emptied.wait_for(lambda: self.held_records == 0, timeout)
