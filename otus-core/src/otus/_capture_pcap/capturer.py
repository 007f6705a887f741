"""The ``pcap`` capturer: reads pcap/pcapng files (or stdin), optionally paced and looped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from otus._capture_pcap.options import PcapOptions
from otus._capture_pcap.pacing import Pacer
from otus._capture_pcap.reader import CHUNK_SIZE, PcapReader
from otus._capture_pcap.source import Source
from otus.capture import PACKET_DESC, Capturer, RawBatch


class PcapCapturer(Capturer):
    """Reads a capture file pass after pass; one :class:`CaptureError` if the file is damaged."""

    def __init__(
        self,
        options: PcapOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.options = options
        self._clock = clock
        self._sleep = sleep
        self._chunk_size = chunk_size
        self._source: Source | None = None
        self._reader: PcapReader | None = None
        self._stopped = False
        self._passes = 0  # passes finished
        self._reopened = 0  # times the file was opened again for a loop
        self._done: dict[str, int] = {}  # counters of finished passes
        self._final: tuple[int, int | None] = (0, None)  # progress() once closed

    def open(self) -> None:
        self._source = Source(self.options.path)

    def stop(self) -> None:
        # a plain attribute store: safe from another thread and from a signal handler
        self._stopped = True

    @property
    def pausable(self) -> bool:
        """A file (or stdin) read as fast as it goes can wait for slow reporters; one replayed
        at its capture pace (``speed``) stands for live traffic and drops like it."""
        return self.options.speed is None

    def _is_stopped(self) -> bool:
        return self._stopped

    def batches(self) -> Iterator[RawBatch]:
        if self._source is None:
            self.open()
        opts = self.options
        pacer = None
        if opts.speed is not None:
            pacer = Pacer(
                opts.speed, clock=self._clock, sleep=self._sleep, stopped=self._is_stopped
            )
        span = pacer.max_span_ns if pacer else 0
        while not self._stopped:
            source = self._source
            assert source is not None
            reader = PcapReader(
                source,
                batch_packets=opts.batch_packets,
                batch_bytes=opts.batch_bytes,
                chunk_size=self._chunk_size,
            )
            self._reader = reader
            if pacer is not None:
                pacer.reset()
            try:
                for batch in reader.batches(span):
                    if pacer is not None:
                        pacer.wait(PACKET_DESC.unpack_from(batch.descs, 0)[0])
                    if self._is_stopped():
                        batch.release()
                        return
                    yield batch
            finally:
                self._add(reader.stats())
                self._reader = None
            self._passes += 1
            if opts.loop != -1 and self._passes > opts.loop:
                return
            source.close()
            self._source = Source(opts.path)
            self._reopened += 1

    def _add(self, stats: dict[str, int]) -> None:
        for key, value in stats.items():
            self._done[key] = self._done.get(key, 0) + value

    def close(self) -> None:
        if self._source is not None:
            self._final = self.progress()
            self._source.close()
            self._source = None

    def stats(self) -> dict[str, int]:
        out = dict(self._done)
        if self._reader is not None:
            for key, value in self._reader.stats().items():
                out[key] = out.get(key, 0) + value
        out["passes"] = self._passes
        return out

    def progress(self) -> tuple[int, int | None]:
        source = self._source
        if source is None:
            return self._final
        size = source.size
        done = source.position()
        if size is None:
            return (done, None)
        if self.options.loop == -1:
            return (done, size)
        return (self._reopened * size + done, size * (self.options.loop + 1))
