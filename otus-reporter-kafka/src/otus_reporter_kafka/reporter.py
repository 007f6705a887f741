"""The Kafka reporter: ``report()`` encodes and queues, a sender thread ships record batches.

``report()`` never waits for the network: it encodes each record once into its Kafka record
body (key, value, headers) and hands it to a bounded
:class:`~otus_reporter_kafka._buffer.Buffer`: with the C encoding, written straight into the
records section of its partition (murmur2 of the key), else as a message in a queue. The
:class:`~otus_reporter_kafka._sender.Sender` (one background thread with an asyncio loop and
an aiokafka producer) takes whole sections, and groups queued messages by partition, builds
and compresses record batches itself (:mod:`otus_reporter_kafka._batch`) and hands them to
``send_batch``: aiokafka's own builder, and more so per-message ``send()``, cost several times
more per record. This module is the pipeline side: encoding, the counters of what
``report()`` refused, and the reporter's life cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from otus import PluginContext, PluginError, Record, Reporter
from otus.tls import TlsFilesError
from otus_reporter_kafka._buffer import Buffer, Message
from otus_reporter_kafka._native import FAST
from otus_reporter_kafka._records import BodyEncoder
from otus_reporter_kafka._sender import Sender
from otus_reporter_kafka.client import (
    FRAMING_BYTES,
    ClusterSettings,
    build_ssl_context,
    resolve_cluster,
)
from otus_reporter_kafka.encoding import Encoder, make_encoder
from otus_reporter_kafka.options import KafkaReporterOptions

__all__ = ["KafkaReporter"]


class KafkaReporter(Reporter):
    """Records to Kafka in the Go Otus wire format, through a bounded buffer."""

    def __init__(
        self,
        options: KafkaReporterOptions,
        context: PluginContext,
        *,
        fallback: Reporter | None = None,
        encoder: Encoder | None = None,
        native: bool = True,
    ) -> None:
        """``native=False`` keeps the record encoding in Python even when the C fast path is
        built (tests and benchmarks compare the two)."""
        self.options = options
        self.cluster: ClusterSettings = resolve_cluster(options, context)
        self.fallback = fallback
        self._encoder = encoder or make_encoder(options.serialization)
        self._buffer = Buffer(options.buffer_records, options.buffer_bytes)
        self._bodies = BodyEncoder(self._encoder, native=native)
        # records go into sections (C encoding), unless a fallback needs the records
        self._sectioned = self._bodies.native and fallback is None
        self._max_size = options.max_message_bytes
        # counters (pipeline thread); the sender counts what became of the rest
        self._reported = 0
        self._dropped_full = 0
        self._dropped_oversize = 0
        self._dropped_encode = 0
        self._dropped_closed = 0
        self._truncated = 0
        self._closed = False
        self._sender = Sender(
            options, self.cluster, self._buffer, sectioned=self._sectioned, fallback=fallback
        )

    def start(self) -> None:
        tls = self.cluster.tls
        if tls is not None:  # a missing CA or key is a start-up error, not a dead sender
            try:
                build_ssl_context(tls)
            except TlsFilesError as exc:
                raise PluginError(f"kafka reporter: {exc}") from None
        if self.fallback is not None:
            self.fallback.start()
        self._sender.start()

    def report(self, records: Sequence[Record]) -> None:
        if self._closed or self._sender.dead:
            self._reported += len(records)
            self._dropped_closed += len(records)
            return
        messages: list[Message] = []
        if self._sectioned:
            total = self._encode_sections(
                records if type(records) is list else list(records), messages
            )
        elif self._bodies.native:
            total = self._encode_native(
                records if type(records) is list else list(records), messages
            )
        else:
            total = 0
            add = messages.append
            for record in records:
                total += self._encode_one(record, add)
        self._reported += len(records)
        if messages:
            self._dropped_full += self._buffer.offer(messages, total)
        self._sender.wake()

    def _encode_sections(self, records: list[Record], messages: list[Message]) -> int:
        """Runs of records written into the sections of their partitions in C, under the
        buffer's lock, or appended to ``messages`` while their topic has no route yet; what
        C leaves (oversized, unusual fields) encoded in Python, into its section too when its
        topic is routed. The held size of the messages appended."""
        options = self.options
        prefix = f"{options.topic_prefix}-" if options.topic_prefix else ""
        buffer = self._buffer
        run = self._bodies.encode_sections
        limit = self._sender.section_limit()
        start, total = 0, 0
        assert FAST is not None
        route = FAST.route

        def place(message: Message) -> None:
            nonlocal total
            records_room, bytes_room = buffer.room()
            if records_room < 1 or bytes_room < message.size:
                self._dropped_full += 1
            elif route(
                buffer.routes, buffer.sealed, buffer.pool, limit, message.topic,
                message.hashed, message.body, message.timestamp_ms, message.size,
            ):  # fmt: skip
                buffer.added(1, message.size)
            else:
                messages.append(message)
                total += message.size

        with buffer.lock:
            while start < len(records):  # read again: a record's property may shrink it
                start, held, count, refused, message_held = run(
                    records, start, messages, options.topic or None, prefix, self._max_size,
                    FRAMING_BYTES, buffer, limit,
                )  # fmt: skip
                buffer.added(count, held)
                self._dropped_full += refused
                total += message_held
                if start < len(records):
                    self._encode_one(records[start], place)
                    start += 1
        return total

    def _encode_native(self, records: list[Record], messages: list[Message]) -> int:
        """Runs of records encoded in C; what it leaves (oversized, unusual fields) one at a
        time in Python. The held size of the messages appended."""
        options = self.options
        prefix = f"{options.topic_prefix}-" if options.topic_prefix else ""
        keep = self.fallback is not None
        run = self._bodies.encode_run
        start, total = 0, 0
        while start < len(records):  # read again: a record's property may shrink the list
            start, held = run(
                records, start, messages, options.topic or None, prefix, keep, self._max_size,
                FRAMING_BYTES,
            )  # fmt: skip
            total += held
            if start < len(records):
                total += self._encode_one(records[start], messages.append)
                start += 1
        return total

    def _encode_one(self, record: Record, add: Callable[[Message], None]) -> int:
        """One record's message passed to ``add`` (or counted as dropped); its held size."""
        try:
            body, hashed = self._bodies.encode(record)
        except (TypeError, ValueError):
            self._dropped_encode += 1
            return 0
        size = len(body) + FRAMING_BYTES
        if size > self._max_size:
            body, size = self._shrink(record, size)
            if not body:
                return 0
        options = self.options
        topic = options.topic
        if not topic:
            prefix = f"{options.topic_prefix}-" if options.topic_prefix else ""
            topic = prefix + record.payload_type
        keep = record if self.fallback is not None else None
        # tuple.__new__: a NamedTuple's own __new__ is a Python function
        add(tuple.__new__(Message, (topic, hashed, body, record.ts_ns // 1_000_000, size, keep)))
        return size

    def _shrink(self, record: Record, size: int) -> tuple[bytes, int]:
        """An oversized record: a body with its raw payload cut to fit, or ``b""`` (dropped)."""
        if self.options.oversize == "truncate" and record.raw_payload:
            # base64 turns 3 raw bytes into 4: cut a little more than the excess needs
            limit = len(record.raw_payload) - ((size - self._max_size) * 3 + 3) // 4 - 3
            if limit >= 0:
                try:
                    value = self._encoder.encode(record, limit)
                except (TypeError, ValueError):
                    value = b""
                body = self._bodies.with_value(record, value) if value else b""
                cut_size = len(body) + FRAMING_BYTES
                if body and cut_size <= self._max_size:
                    self._truncated += 1
                    return body, cut_size
        self._dropped_oversize += 1
        return b"", 0

    def wait_for_room(self, records: int, timeout: float) -> bool:
        """A file source waits here while the broker catches up (instead of records being
        dropped as ``dropped.buffer_full``); at once when closed or failed for good, where
        ``report`` counts what it refuses."""
        if self._closed or self._sender.dead or not self._sender.started:
            return True
        return self._buffer.wait_for_room(records, timeout)

    def flush(self, timeout: float) -> bool:
        if not self._sender.started:
            return self._buffer.held_records == 0
        return self._buffer.wait_empty(timeout)

    def close(self, timeout: float) -> None:
        """Deliver what is held within ``min(timeout, flush_timeout)``; count the rest."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + min(timeout, self.options.flush_timeout)
        self._sender.stop(deadline)
        if self.fallback is not None:
            self.fallback.close(max(0.5, deadline - time.monotonic()))

    def stats(self) -> dict[str, int]:
        dropped_full = self._dropped_full
        abandoned = self._sender.abandoned
        sent = self._sender.stats()
        return {
            "reported": self._reported,
            "records": sent["records"],
            "errors": sent["errors"] + self._dropped_encode,
            "dropped.buffer_full": dropped_full,
            "dropped.oversize": self._dropped_oversize,
            "dropped.encode_error": self._dropped_encode,
            "dropped.delivery_failed": sent["dropped.delivery_failed"],
            "dropped.shutdown": sent["dropped.shutdown"] + self._dropped_closed,
            "truncated": self._truncated,
            "fallback": sent["fallback"],
            "buffer_records": 0 if abandoned else self._buffer.held_records,
            "buffer_bytes": 0 if abandoned else self._buffer.held_bytes,
            "batches": sent["batches"],
            "batches_split": sent["batches_split"],
            "retries": sent["retries"],
            "reconnects": sent["reconnects"],
        }
