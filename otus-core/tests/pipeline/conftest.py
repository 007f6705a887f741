"""In-test plugins for pipeline tests, and a factory that builds a pipeline from them.

Why fakes here: these tests are about the run loop itself — how often each plugin is called,
that every raw batch is released, what happens when a plugin raises — which the real plugins
neither expose nor can be told to do. The decoder and the TCP reassembler are the real ones.
End-to-end runs with the real pcap capturer, SIP parser and console reporter are in
``test_pcap_pipeline.py`` and ``tests/cli/test_run_cli.py``.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from otus import (
    Capturer,
    CapturerSpec,
    Datagram,
    Interest,
    Parser,
    ParserSpec,
    PluginContext,
    Processor,
    ProcessorSpec,
    RawBatch,
    Record,
    Reporter,
    ReporterSpec,
    StreamChunk,
)
from otus._config.task import TaskConfig
from otus._config.validate import ValidatedTask
from otus._pipeline.builder import build_pipeline
from otus._pipeline.pipeline import Pipeline
from otus.testing.packets import DEFAULT_TS_NS, ethernet_udp_frame, raw_batch


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListCapturer(Capturer):
    """Yields the given batches (or ``forever`` copies of the first), recording each release."""

    def __init__(
        self,
        batches: Sequence[RawBatch],
        *,
        error: Exception | None = None,
        forever: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._batches = list(batches)
        self._error = error
        self._forever = forever
        self._on_batch = on_batch
        self._stopped = threading.Event()
        self.yielded = 0
        self.released: list[int] = []
        self.calls: list[str] = []

    def open(self) -> None:
        self.calls.append("open")

    def _tracked(self, batch: RawBatch, n: int) -> RawBatch:
        return RawBatch(batch.data, batch.descs, batch.count, lambda: self.released.append(n))

    def batches(self) -> Iterator[RawBatch]:
        i = 0
        while not self._stopped.is_set():
            if i < len(self._batches):
                source = self._batches[i]
            elif self._forever:
                source = self._batches[0]
            else:
                break
            if self._on_batch is not None:
                self._on_batch(i)
            self.yielded += 1
            yield self._tracked(source, i)
            i += 1
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self.calls.append("close")

    def stats(self) -> dict[str, int]:
        return {"packets": sum(b.count for b in self._batches[: self.yielded]), "drops.kernel": 0}


class CountingParser(Parser):
    """Makes one record per datagram (payload copied) and counts its calls.

    ``fail`` decides per call number (1-based) whether to raise instead.
    """

    payload_type = "test"

    def __init__(
        self,
        interest: Interest | None = None,
        *,
        fail: Callable[[int], bool] = lambda n: False,
        tick_records: int = 0,
        close_records: int = 0,
    ) -> None:
        self._interest = interest or Interest(ports=frozenset({5060}))
        self._fail = fail
        self._tick_records = tick_records
        self._close_records = close_records
        self.calls = 0
        self.datagrams = 0
        self.ticks: list[int] = []
        self.chunks: list[StreamChunk] = []
        self.closed = False

    def interest(self) -> Interest:
        return self._interest

    def _record(self, ts_ns: int, payload: bytes, src: str = "192.0.2.1", port: int = 0) -> Record:
        return Record(
            ts_ns=ts_ns, src_ip=src, dst_ip="192.0.2.2", src_port=port, dst_port=5060,
            protocol=17, payload_type=self.payload_type, raw_payload=payload,
            labels={"test.kind": "datagram"},
        )  # fmt: skip

    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        self.calls += 1
        if self._fail(self.calls):
            raise ValueError(f"parse call {self.calls} fails on purpose")
        self.datagrams += len(datagrams)
        return [self._record(d.ts_ns, bytes(d.payload), d.src_ip, d.src_port) for d in datagrams]

    def parse_stream(self, chunks: Sequence[StreamChunk]) -> list[Record]:
        self.chunks += chunks
        return [self._record(c.ts_ns, c.data) for c in chunks if c.data]

    def tick(self, now_ns: int) -> list[Record]:
        self.ticks.append(now_ns)
        return [self._record(now_ns, b"tick") for _ in range(self._tick_records)]

    def close(self) -> list[Record]:
        self.closed = True
        return [self._record(0, b"close") for _ in range(self._close_records)]

    def stats(self) -> dict[str, int]:
        return {"messages": self.datagrams, "error.on_purpose": 0}


class KeepEvery(Processor):
    """Keeps every ``n``-th record; raises on the calls ``fail`` selects."""

    def __init__(self, n: int = 1, fail: Callable[[int], bool] = lambda n: False) -> None:
        self.n = n
        self._fail = fail
        self.calls = 0
        self.closed = False

    def process(self, records: list[Record]) -> list[Record]:
        self.calls += 1
        if self._fail(self.calls):
            raise RuntimeError("processor fails on purpose")
        return records[:: self.n]

    def close(self) -> None:
        self.closed = True


class CollectingReporter(Reporter):
    """Keeps what it is given; can raise on report or hang in close."""

    def __init__(
        self,
        *,
        fail: Callable[[int], bool] = lambda n: False,
        hang: threading.Event | None = None,
    ) -> None:
        self._fail = fail
        self._hang = hang
        self.calls = 0
        self.records: list[Record] = []
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def report(self, records: Sequence[Record]) -> None:
        self.calls += 1
        if self._fail(self.calls):
            raise OSError("destination is down (on purpose)")
        self.records += records

    def flush(self, timeout: float) -> bool:
        self.events.append("flush")
        return True

    def close(self, timeout: float) -> None:
        self.events.append("close")
        if self._hang is not None:
            self._hang.wait(30)

    def stats(self) -> dict[str, int]:
        return {"records": len(self.records), "dropped.buffer_full": 0, "buffer_records": 0}


def _spec(cls: Any, name: str, instance: Any) -> Any:
    return cls(name=name, factory=lambda o, c: instance, options_model=NoOptions, summary="test")


def make_pipeline(
    capturer: Capturer,
    parsers: Sequence[Parser] = (),
    processors: Sequence[Processor] = (),
    reporters: Sequence[Reporter] = (),
    *,
    labels: dict[str, str] | None = None,
    decoder: dict[str, Any] | None = None,
    names: dict[int, str] | None = None,
) -> Pipeline:
    """Build a pipeline through the real builder from ready-made plugin instances."""
    config = TaskConfig.model_validate(
        {"id": "t1", "capture": {"name": "fake"}, "reporters": [{"name": "collect"}],
         "labels": labels or {}, "decoder": decoder or {}}
    )  # fmt: skip
    names = names or {}
    task = ValidatedTask(
        config=config,
        capture=(_spec(CapturerSpec, "fake", capturer), NoOptions()),
        parsers=[
            (_spec(ParserSpec, names.get(id(p), "counting"), p), NoOptions()) for p in parsers
        ],
        processors=[(_spec(ProcessorSpec, "keep", p), NoOptions()) for p in processors],
        reporters=[(_spec(ReporterSpec, "collect", r), NoOptions()) for r in reporters],
    )
    context = PluginContext(task_id="t1", agent_id="agent-1", pipeline_id=3)
    return build_pipeline(task, context)


def sip_batch(
    n: int, *, ts_ns: int = DEFAULT_TS_NS, step_ns: int = 1_000, other: int = 0
) -> RawBatch:
    """``n`` UDP frames to port 5060 followed by ``other`` frames to port 9999."""
    frames = [ethernet_udp_frame(b"OPTIONS %d" % i) for i in range(n)]
    frames += [ethernet_udp_frame(b"noise", dport=9999) for _ in range(other)]
    return raw_batch(frames, ts_ns=ts_ns, step_ns=step_ns)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def tcp_frame(payload: bytes, *, seq: int, flags: int = 0x18, sport: int = 40000,
              dport: int = 5060) -> bytes:  # fmt: skip
    """Ethernet + IPv4 + TCP (no options) carrying ``payload``."""
    src, dst = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, flags, 65535, 0, 0) + payload
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    return eth + ip + tcp


@pytest.fixture
def fakes() -> SimpleNamespace:
    """The in-test plugins and helpers of this directory."""
    return SimpleNamespace(
        ListCapturer=ListCapturer,
        CountingParser=CountingParser,
        KeepEvery=KeepEvery,
        CollectingReporter=CollectingReporter,
        make_pipeline=make_pipeline,
        sip_batch=sip_batch,
        tcp_frame=tcp_frame,
    )
