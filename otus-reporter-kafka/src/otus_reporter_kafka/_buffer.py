"""The bounded hand-over between ``report()`` (pipeline thread) and the sender thread.

Limits count everything the reporter holds, queued or in flight, so memory stays bounded
while the broker is away. A full buffer refuses new messages (tail drop): what is already
queued is older and goes out first when the broker returns.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple

from otus import Record

__all__ = ["Buffer", "Message"]


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
        self._lock = threading.Lock()
        self._emptied = threading.Condition(self._lock)

    def offer(self, messages: list[Message], nbytes: int) -> int:
        """Queue what fits; return how many were refused."""
        with self._lock:
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
        return len(self._queue)

    def queued_bytes(self) -> int:
        """About how many bytes are queued (not in flight): the queued records at the mean
        held size."""
        held = self.held_records
        return len(self._queue) * self.held_bytes // held if held else 0

    def take(self, max_records: int) -> list[Message]:
        """Move up to ``max_records`` from the queue to in flight (still held)."""
        with self._lock:
            queue = self._queue
            if max_records >= len(queue):
                out = list(queue)
                queue.clear()
                self.queued_since = None
                return out
            pop = queue.popleft
            return [pop() for _ in range(max_records)]  # the rest keeps its queued_since

    def take_all(self) -> list[Message]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
            self.queued_since = None
            return out

    def release(self, records: int, nbytes: int) -> None:
        """Messages left the reporter (delivered, failed or dropped)."""
        with self._lock:
            self.held_records -= records
            self.held_bytes -= nbytes
            if self.held_records == 0:
                self._emptied.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        """Block until nothing is held or ``timeout`` passes; ``True`` when empty."""
        with self._lock:
            return self._emptied.wait_for(lambda: self.held_records == 0, timeout)
