"""The Kafka reporter's sender: one thread with an asyncio loop and an aiokafka producer that
takes what ``report()`` left in the :class:`~otus_reporter_kafka._buffer.Buffer` (whole
sections, and queued messages grouped by partition), builds and compresses the record batches
itself (:mod:`otus_reporter_kafka._batch`), hands them to ``send_batch``, retries, reconnects,
and counts what became of every record (delivered, failed, given to the fallback, dropped at
shutdown).

:class:`~otus_reporter_kafka.reporter.KafkaReporter` owns one :class:`Sender`: it calls
:meth:`Sender.start`, :meth:`Sender.wake` after queueing, :meth:`Sender.section_limit` when
writing sections, :meth:`Sender.stop` on close, and merges :meth:`Sender.stats` into its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from bisect import bisect_right
from collections import deque
from itertools import accumulate
from typing import Any

from otus import Reporter
from otus_reporter_kafka._batch import HEADER_SIZE, PrebuiltBatch
from otus_reporter_kafka._buffer import Buffer, Message, Section
from otus_reporter_kafka._codecs import codec
from otus_reporter_kafka.client import ClusterSettings, producer_kwargs
from otus_reporter_kafka.options import KafkaReporterOptions

__all__ = ["Sender"]

#: What a delivery attempt carries: a section, or queued messages of one partition.
Chunk = list[Message] | Section

#: The reporter's logger, as before the sender had a module of its own.
log = logging.getLogger("otus_reporter_kafka.reporter")

#: Messages taken from the buffer per round of the sender loop.
_ROUND = 20_000
#: Longest pause of an idle sender loop (a safety net; report() wakes it).
_IDLE_WAIT = 0.05
#: A compressed batch holds up to this many times ``batch_size`` of uncompressed records (the
#: limit is on the batch as sent, as the broker's is), as far as the compression seen lately
#: allows, with a margin; a batch that still comes out too large is split in two. Fewer,
#: larger requests: aiokafka spends ~250 µs of CPU on a 100 KB produce request, ~1 ms on a
#: 1 MB one. Twice gave ~3-4 % less CPU a record here (lz4 and zstd, interleaved A/B);
#: eight times was ~7 % worse: the larger compressed batches and aiokafka's copies of them
#: are allocated above glibc's mmap threshold, and their fresh pages fault.
_MAX_STRETCH = 2.0
_STRETCH_MARGIN = 0.75
#: Seconds between checks of the partition counts of routed topics (aiokafka's cached
#: metadata; a topic that gained partitions is routed to all of them after that).
_ROUTES_CHECK = 5.0


class _ProducerBrokenError(Exception):
    """The producer is in a state it cannot leave by itself: make a new one."""


class Sender:
    """Delivers what ``buffer`` holds to the cluster from its own thread; ``sectioned``: the
    reporter writes records into sections, so topics get routes as soon as their partitions
    are known; ``fallback`` gets the records of messages given up on."""

    def __init__(
        self,
        options: KafkaReporterOptions,
        cluster: ClusterSettings,
        buffer: Buffer,
        *,
        sectioned: bool,
        fallback: Reporter | None,
    ) -> None:
        self.options = options
        self.cluster = cluster
        self.fallback = fallback
        self._buffer = buffer
        self._sectioned = sectioned
        self._codec = codec(options.compression, options.compression_level)
        self._scratch = bytearray()  # uncompressed records sections
        self._routes_checked = 0.0
        self._stretch = 1.0  # uncompressed bytes per batch, in batch_size
        self._delivered = 0
        self._errors = 0
        self._dropped_failed = 0
        self._dropped_shutdown = 0
        self._to_fallback = 0
        # stop() gave up on a sender stuck on a lost connection: what it held was counted as
        # dropped then, and the sender counts nothing after (under _settle_lock)
        self._abandoned = False
        self._dropped_abandoned = 0
        self._settle_lock = threading.RLock()
        self._batches = 0
        self._batches_split = 0
        self._retries = 0
        self._reconnects = 0
        self._connect_failures = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._idle = False
        self._stopping = False
        #: The thread ended: nothing more can be delivered.
        self.dead = False
        self._started = threading.Event()
        self._retry_queue: deque[tuple[float, Chunk, int]] = deque()
        self._inflight: dict[asyncio.Future[Any], Chunk] = {}

    # -- what the reporter calls (pipeline thread) ----------------------------------------------

    @property
    def started(self) -> bool:
        """:meth:`start` was called."""
        return self._thread is not None

    @property
    def abandoned(self) -> bool:
        """:meth:`stop` gave up on the thread: the buffer's contents were counted as dropped."""
        return self._abandoned

    def start(self) -> None:
        """Start the thread and wait (10 s at most) until its loop runs."""
        self._thread = threading.Thread(target=self._run, name="otus-kafka-sender", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def wake(self) -> None:
        """Records were queued: wake the loop if it is waiting for some."""
        if self._idle and self._loop is not None and self._wake is not None:
            self._idle = False
            self._loop.call_soon_threadsafe(self._wake.set)

    def section_limit(self) -> int:
        """Uncompressed bytes a batch (a section) may hold: ``batch_size`` times what the
        recent compression allows (see ``_MAX_STRETCH``), less the batch header."""
        return round(self.options.batch_size * self._stretch) - HEADER_SIZE

    def stop(self, deadline: float) -> None:
        """Deliver what is held until ``deadline`` (``time.monotonic()``), then end the thread;
        one stuck on a lost connection is given up on and what it holds counted as dropped."""
        self._stopping = True
        self._poke()
        if self._thread is not None:
            self._buffer.wait_empty(max(0.0, deadline - time.monotonic()))
        if self._loop is not None and self._main_task is not None:
            with contextlib.suppress(RuntimeError):  # loop already finished
                self._loop.call_soon_threadsafe(self._main_task.cancel)
        if self._thread is not None:
            # at least a moment for the cancelled sender to end; a stuck one is given up on
            self._thread.join(max(0.1, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._abandon_held()

    def stats(self) -> dict[str, int]:
        """What became of the records taken from the buffer (``errors``: failed deliveries;
        ``dropped.shutdown`` includes what :meth:`stop` gave up on)."""
        return {
            "records": self._delivered,
            "errors": self._errors,
            "dropped.delivery_failed": self._dropped_failed,
            "dropped.shutdown": self._dropped_shutdown + self._dropped_abandoned,
            "fallback": self._to_fallback,
            "batches": self._batches,
            "batches_split": self._batches_split,
            "retries": self._retries,
            "reconnects": self._reconnects,
        }

    def _poke(self) -> None:
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    def _abandon_held(self) -> None:
        """The thread did not end in time (stuck on a connection the broker dropped): count
        what it still holds as ``dropped.shutdown`` now, not when it ends, after the run's
        summary was taken."""
        with self._settle_lock:
            if not self._abandoned:
                self._abandoned = True
                self._dropped_abandoned = self._buffer.held_records
                if self._dropped_abandoned:
                    log.warning(
                        "kafka: %d records not delivered before the reporter closed",
                        self._dropped_abandoned,
                    )

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except asyncio.CancelledError:  # stop() cut a last producer shutdown short
            pass
        except Exception:  # a bug here must not go unnoticed, nor kill the pipeline
            log.exception("kafka sender thread failed")
        finally:
            self.dead = True
            self._started.set()
            self._abandon(self._buffer.take_all(), in_flight=False)
            for section in self._buffer.take_sections():
                self._abandon(section, in_flight=False)
            for chunk in list(self._inflight.values()):
                self._abandon(chunk, in_flight=True)
            self._inflight.clear()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._main_task = asyncio.current_task()
        self._started.set()
        producer: Any = None
        try:
            while True:
                if self._stopping and not self._buffer.queued and not self._pending_work():
                    break
                if producer is None:
                    producer = await self._connect()
                    if producer is None:
                        continue
                try:
                    if not await self._send_round(producer):
                        await self._idle_wait()
                except _ProducerBrokenError:
                    self._reconnects += 1
                    await self._discard(producer)
                    producer = None
            if self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            for _, chunk, _ in self._retry_queue:
                self._abandon(chunk, in_flight=False)
            self._retry_queue.clear()
            if producer is not None:
                await self._discard(producer)
            for future, chunk in list(self._inflight.items()):
                del self._inflight[future]
                self._abandon(chunk, in_flight=True)

    def _pending_work(self) -> bool:
        return bool(self._retry_queue or self._inflight)

    async def _idle_wait(self) -> None:
        assert self._wake is not None
        self._wake.clear()
        self._idle = True
        if self._buffer.queued or self._stopping:
            self._idle = False
            await asyncio.sleep(0.01 if self._stopping else 0)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), _IDLE_WAIT)
        self._idle = False

    async def _connect(self) -> Any:
        """A started producer, or ``None`` after a back-off when the brokers are unreachable."""
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**producer_kwargs(self.options, self.cluster))
        try:
            await asyncio.wait_for(producer.start(), self.options.request_timeout)
        except Exception as err:
            self._connect_failures += 1
            if self._connect_failures in (1, 10) or self._connect_failures % 100 == 0:
                log.warning(
                    "kafka: cannot connect to %s (attempt %d): %r",
                    self.cluster.brokers,
                    self._connect_failures,
                    err,
                )
            await self._discard(producer)
            await asyncio.sleep(self.options.retry_backoff)
            return None
        self._connect_failures = 0
        if self._sectioned and self.options.topic:  # route the fixed topic from the start
            self._routes_checked = time.monotonic()
            await self._check_routes(producer, [self.options.topic])
        return producer

    async def _discard(self, producer: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 2.0)

    async def _send_round(self, producer: Any) -> bool:
        """Ship due retries, then a round of queued messages; ``False`` when there was none."""
        now = time.monotonic()
        if self._retry_queue and self._retry_queue[0][0] <= now:
            _, chunk, attempt = self._retry_queue.popleft()
            if isinstance(chunk, list):
                await self._send(producer, chunk, attempt)
            else:
                await self._ship_section(producer, chunk, attempt)
            return True
        if self._sectioned and now - self._routes_checked > _ROUTES_CHECK:
            self._routes_checked = now
            await self._check_routes(producer)
        if not self._buffer.queued:
            return False
        await self._linger()
        messages = self._buffer.take(_ROUND)
        # queued messages are older than records in sections (their topic had no route yet):
        # sections wait until the queue is empty, so a partition's records keep their order
        sections = self._buffer.take_sections() if len(messages) < _ROUND else []
        if not messages and not sections:
            return False
        if messages:
            await self._send(producer, messages, 0)
        for section in sections:
            await self._ship_section(producer, section, 0)
        return True

    async def _check_routes(self, producer: Any, topics: list[str] | None = None) -> None:
        """Route the records of these topics (default: the routed ones) to their current
        partitions: partitions added to a topic get its records from now on."""
        for topic in list(self._buffer.routes) if topics is None else topics:
            with contextlib.suppress(Exception):  # unreachable now: checked again later
                partitions = await asyncio.wait_for(
                    producer.partitions_for(topic), self.options.request_timeout
                )
                self._buffer.install_routes(topic, sorted(partitions))

    async def _linger(self) -> None:
        """Let a batch fill: wait until the oldest queued message is ``linger`` old, unless
        about a batch (``batch_size``) is queued already or the reporter is closing. Without
        it a pipeline that reports ~100 records at a time sent batches of ~80 records, each a
        produce request that costs aiokafka ~150 µs of CPU."""
        buffer, linger = self._buffer, self.options.linger
        since = buffer.queued_since
        if self._stopping or since is None or linger <= 0:
            return
        left = since + linger - time.monotonic()
        if left > 0 and buffer.queued_bytes() < self.options.batch_size:
            await asyncio.sleep(left)

    async def _send(self, producer: Any, messages: list[Message], attempt: int) -> None:
        by_partition: dict[tuple[str, int], list[Message]] = {}
        groups = {self.options.topic: messages} if self.options.topic else _by_topic(messages)
        for topic, group in groups.items():
            try:
                partitions = sorted(
                    await asyncio.wait_for(
                        producer.partitions_for(topic), self.options.request_timeout
                    )
                )
            except Exception as err:
                self._failed(group, attempt, err)
                continue
            if self._sectioned:  # its next records go straight into sections
                self._buffer.install_routes(topic, partitions)
            count = len(partitions)
            if count == 1:
                by_partition[(topic, partitions[0])] = group
                continue
            buckets: list[list[Message]] = [[] for _ in range(count)]
            for message in group:
                buckets[message.hashed % count].append(message)
            for index, bucket in enumerate(buckets):
                if bucket:
                    by_partition[(topic, partitions[index])] = bucket
        for (topic, part), group in by_partition.items():
            await self._send_partition(producer, topic, part, group, attempt)

    async def _send_partition(
        self, producer: Any, topic: str, part: int, messages: list[Message], attempt: int
    ) -> None:
        """Batches of at most ``batch_size`` held bytes, times what compression allows (see
        ``_MAX_STRETCH``), and at least one record, to one partition; a message's held size
        is its body plus generous framing."""
        ends = list(accumulate([m.size for m in messages]))
        start = 0
        base = 0
        while start < len(messages):
            limit = self.section_limit()
            end = max(bisect_right(ends, base + limit, start), start + 1)
            await self._ship(
                producer, messages[start:end], ends[end - 1] - base, topic, part, attempt
            )
            base = ends[end - 1]
            start = end

    async def _ship(
        self,
        producer: Any,
        chunk: list[Message],
        nbytes: int,
        topic: str,
        part: int,
        attempt: int,
    ) -> None:
        batch = PrebuiltBatch.build(chunk, self._codec, self._scratch)
        self._note_compression(batch)
        if batch.size() > self.options.batch_size and len(chunk) > 1:
            # compressed less than the stretch assumed: two batches of half the records each
            self._batches_split += 1
            half = len(chunk) // 2
            held = sum(m.size for m in chunk[:half])
            await self._ship(producer, chunk[:half], held, topic, part, attempt)
            await self._ship(producer, chunk[half:], nbytes - held, topic, part, attempt)
            return
        await self._submit(producer, batch, chunk, nbytes, topic, part, attempt)

    async def _ship_section(self, producer: Any, section: Section, attempt: int) -> None:
        """One section as one batch; split in two when it came out larger than
        ``batch_size``."""
        batch = PrebuiltBatch.from_section(section, self._codec)
        self._note_compression(batch)
        if batch.size() > self.options.batch_size and section.count > 1:
            self._batches_split += 1
            rest = section.split()
            await self._ship_section(producer, section, attempt)
            await self._ship_section(producer, rest, attempt)
            return
        await self._submit(
            producer, batch, section, section.held, section.topic, section.partition, attempt
        )

    async def _submit(
        self,
        producer: Any,
        batch: PrebuiltBatch,
        chunk: Chunk,
        nbytes: int,
        topic: str,
        part: int,
        attempt: int,
    ) -> None:
        """Hand a built batch of ``chunk`` to the producer and follow its delivery."""
        from aiokafka.errors import KafkaTimeoutError

        try:
            future = await producer.send_batch(batch, topic, partition=part)
        except KafkaTimeoutError as err:  # the partition's queue did not drain in time
            self._failed(chunk, attempt, err)
            return
        except Exception as err:
            self._failed(chunk, attempt, err)
            raise _ProducerBrokenError from err
        self._batches += 1
        self._inflight[future] = chunk
        future.add_done_callback(lambda fut: self._settled(fut, chunk, nbytes, attempt))

    def _note_compression(self, batch: PrebuiltBatch) -> None:
        """Follow the compression ratio of the batches built: at once when it falls, halfway
        when it rises."""
        if self._codec is None:
            return
        ratio = batch.raw_size / max(1, batch.size() - HEADER_SIZE)
        target = max(1.0, min(_MAX_STRETCH, ratio * _STRETCH_MARGIN))
        self._stretch = target if target < self._stretch else (self._stretch + target) / 2

    def _settled(
        self, future: asyncio.Future[Any], chunk: Chunk, nbytes: int, attempt: int
    ) -> None:
        if self._inflight.pop(future, None) is None:
            return  # already abandoned at shutdown
        with self._settle_lock:
            if not self._abandoned:
                self._settle(future, chunk, nbytes, attempt)

    def _settle(self, future: asyncio.Future[Any], chunk: Chunk, nbytes: int, attempt: int) -> None:
        if future.cancelled():
            self._abandon(chunk, in_flight=True)
            return
        err = future.exception()
        if err is None:
            count, _ = _tally(chunk)
            self._delivered += count
            self._buffer.release(count, nbytes)
            if not isinstance(chunk, list):
                self._buffer.recycle(chunk)
        else:
            self._failed(chunk, attempt, err)

    def _failed(self, chunk: Chunk, attempt: int, err: BaseException) -> None:
        """A delivery attempt failed: try again later, or give up on these messages."""
        if attempt < self.options.retries and not self._stopping:
            self._retries += 1
            due = time.monotonic() + self.options.retry_backoff
            self._retry_queue.append((due, chunk, attempt + 1))
            return
        log.warning("kafka: %d records not delivered: %r", _tally(chunk)[0], err)
        self._errors += 1
        self._give_up(chunk)

    def _give_up(self, chunk: Chunk) -> None:
        with self._settle_lock:
            if not self._abandoned:
                self._give_up_counted(chunk)

    def _give_up_counted(self, chunk: Chunk) -> None:
        count, nbytes = _tally(chunk)
        if self.fallback is not None and isinstance(chunk, list):
            records = [m.record for m in chunk if m.record is not None]
            try:
                self.fallback.report(records)
                self._to_fallback += len(records)
            except Exception:
                log.exception("kafka: fallback reporter failed")
                self._dropped_failed += len(records)
        else:  # sections are written only without a fallback
            self._dropped_failed += count
        self._buffer.release(count, nbytes)

    def _abandon(self, chunk: Chunk, *, in_flight: bool) -> None:
        """Shutdown left these undelivered: never-sent ones go to the fallback."""
        count, nbytes = _tally(chunk)
        with self._settle_lock:
            if not count or self._abandoned:  # counted by close() already
                return
            if self.fallback is not None and not in_flight:
                self._give_up(chunk)
                return
            self._dropped_shutdown += count
            self._buffer.release(count, nbytes)


def _tally(chunk: Chunk) -> tuple[int, int]:
    """Records and held bytes of a chunk."""
    if isinstance(chunk, list):
        return len(chunk), sum(m.size for m in chunk)
    return chunk.count, chunk.held


def _by_topic(messages: list[Message]) -> dict[str, list[Message]]:
    groups: dict[str, list[Message]] = {}
    for message in messages:
        groups.setdefault(message.topic, []).append(message)
    return groups
