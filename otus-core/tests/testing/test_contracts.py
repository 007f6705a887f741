"""The contract suites pass good plugins and catch broken ones.

The broken plugins below are deliberately small fakes: each breaks exactly one rule, to show that
the suite notices.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from otus import (
    Datagram,
    Interest,
    Parser,
    ParserSpec,
    PluginContext,
    Processor,
    ProcessorSpec,
    Record,
    Reporter,
    ReporterSpec,
)
from otus._capture_pcap.options import PcapOptions
from otus._capture_pcap.plugin import otus_capturers
from otus.testing import (
    CapturerContract,
    ParserContract,
    ProcessorContract,
    ReporterContract,
    ethernet_udp_frame,
    write_pcap,
)


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = Field("HELLO", description="What a message starts with.")


class HelloParser(Parser):
    """A correct parser: one record per datagram starting with the prefix, else counted."""

    payload_type = "hello"

    def __init__(self, options: NoOptions, context: PluginContext) -> None:
        self.prefix = options.prefix.encode()
        self.errors = 0

    def interest(self) -> Interest:
        return Interest(ports=frozenset({7777}))

    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        out = []
        for d in datagrams:
            raw = bytes(d.payload)
            if not raw.startswith(self.prefix):
                self.errors += 1
                continue
            out.append(
                Record(
                    ts_ns=d.ts_ns, src_ip=d.src_ip, dst_ip=d.dst_ip, src_port=d.src_port,
                    dst_port=d.dst_port, protocol=d.protocol, payload_type="hello",
                    raw_payload=raw, labels={"hello.size": str(len(raw))},
                )
            )  # fmt: skip
        return out

    def stats(self) -> dict[str, int]:
        return {"error.no_prefix": self.errors}


class RaisingParser(HelloParser):
    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        return [self._one(d) for d in datagrams]

    def _one(self, d: Datagram) -> Record:
        if not bytes(d.payload).startswith(self.prefix):
            raise ValueError("not hello")
        return super().parse([d])[0]


class SilentParser(HelloParser):
    def stats(self) -> dict[str, int]:
        return {}


class BufferKeepingParser(HelloParser):
    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        out = super().parse(datagrams)
        for r, d in zip(out, datagrams, strict=False):
            r.payload = {"view": d.payload}  # keeps the memoryview: must be caught
            r.raw_payload = b""
        return out


class UpperLabelParser(HelloParser):
    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        out = super().parse(datagrams)
        for r in out:
            r.labels = {"Hello.Size": "1"}
        return out


def _parser_spec(cls: type[Parser]) -> ParserSpec:
    return ParserSpec(name="hello", factory=cls, options_model=NoOptions, summary="Hello lines")


def _run_suite(suite: type, names: list[str], tmp_path: Path) -> dict[str, str]:
    """Run the named contract tests of ``suite``; name → 'ok' or the failure message."""
    results = {}
    for name in names:
        method: Callable[..., None] = getattr(suite(), name)
        try:
            if "tmp_path" in method.__code__.co_varnames:
                method(tmp_path)
            else:
                method()
        except (AssertionError, pytest.fail.Exception, TypeError, ValueError) as exc:
            results[name] = f"{type(exc).__name__}: {exc}"
        else:
            results[name] = "ok"
    return results


PARSER_TESTS = [n for n in dir(ParserContract) if n.startswith("test_")]


class TestHelloParser(ParserContract):
    spec = _parser_spec(HelloParser)
    samples = (b"HELLO world", b"HELLO again")


@pytest.mark.parametrize(
    ("cls", "broken"),
    [
        (RaisingParser, "test_garbage_never_raises_and_is_counted"),
        (SilentParser, "test_garbage_never_raises_and_is_counted"),
        (BufferKeepingParser, "test_records_do_not_keep_the_capture_buffer"),
        (UpperLabelParser, "test_parse_samples_makes_records"),
    ],
)
def test_parser_contract_catches(cls: type[Parser], broken: str, tmp_path: Path) -> None:
    suite = type("Suite", (ParserContract,), {"spec": _parser_spec(cls), "samples": (b"HELLO x",)})
    results = _run_suite(suite, PARSER_TESTS, tmp_path)
    assert results[broken] != "ok"


def test_options_without_descriptions_are_caught(tmp_path: Path) -> None:
    class Bare(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prefix: str = "HELLO"

    spec = ParserSpec(name="hello", factory=HelloParser, options_model=Bare, summary="x")
    suite = type("Suite", (ParserContract,), {"spec": spec, "samples": (b"HELLO",)})
    results = _run_suite(suite, ["test_options_defaults_are_documented"], tmp_path)
    assert "no description" in results["test_options_defaults_are_documented"]


# -- processors ---------------------------------------------------------------------------------


class DropRtp(Processor):
    def __init__(self, options: NoOptions, context: PluginContext) -> None:
        self.dropped = 0

    def process(self, records: list[Record]) -> list[Record]:
        out = [r for r in records if r.payload_type != "rtp"]
        self.dropped += len(records) - len(out)
        return out

    def stats(self) -> dict[str, int]:
        return {"dropped.rtp": self.dropped}


class Inventing(DropRtp):
    def process(self, records: list[Record]) -> list[Record]:
        return [Record(**{s: getattr(r, s) for s in ("ts_ns", "src_ip", "dst_ip", "src_port",
                "dst_port", "protocol", "payload_type")}) for r in records]  # fmt: skip


class TestDropRtp(ProcessorContract):
    spec = ProcessorSpec(name="droprtp", factory=DropRtp, options_model=NoOptions, summary="x")


def test_processor_contract_catches_invented_records(tmp_path: Path) -> None:
    spec = ProcessorSpec(name="inventing", factory=Inventing, options_model=NoOptions, summary="x")
    suite = type("Suite", (ProcessorContract,), {"spec": spec})
    results = _run_suite(suite, ["test_process_passes_on_input_records_only"], tmp_path)
    assert (
        "pass on the records it was given" in results["test_process_passes_on_input_records_only"]
    )


# -- reporters ----------------------------------------------------------------------------------


class ListReporter(Reporter):
    """Delivers into a list synchronously; 'blocked' drops when its bounded list is full."""

    def __init__(self, options: NoOptions, context: PluginContext, capacity: int = 10**6) -> None:
        self.out: list[Record] = []
        self.capacity = capacity
        self.dropped = 0

    def report(self, records: Sequence[Record]) -> None:
        room = max(self.capacity - len(self.out), 0)
        self.out.extend(records[:room])
        self.dropped += max(len(records) - room, 0)

    def stats(self) -> dict[str, int]:
        return {"records": len(self.out), "errors": 0, "buffer_records": 0,
                "dropped.full": self.dropped}  # fmt: skip


class BlockingReporter(ListReporter):
    """Waits for its destination inside report(): exactly what must never happen."""

    release = threading.Event()

    def report(self, records: Sequence[Record]) -> None:
        self.release.wait(60)


def _reporter_spec(cls: type[Reporter]) -> ReporterSpec:
    return ReporterSpec(name="list", factory=cls, options_model=NoOptions, summary="x")


class TestListReporter(ReporterContract):
    spec = _reporter_spec(ListReporter)

    def make_blocked_reporter(self, tmp_path: Path) -> tuple[Reporter, Callable[[], None]]:
        return ListReporter(NoOptions(), PluginContext(), capacity=100), lambda: None


def test_reporter_contract_catches_a_blocking_report(tmp_path: Path) -> None:
    suite = type(
        "Suite",
        (ReporterContract,),
        {
            "spec": _reporter_spec(BlockingReporter),
            "make_blocked_reporter": lambda self, tmp: (
                BlockingReporter(NoOptions(), PluginContext()),
                BlockingReporter.release.set,
            ),
        },
    )
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("otus.testing.contracts.LIVENESS_TIMEOUT", 0.3)
            mp.setattr("otus.testing.contracts.call_bounded.__defaults__", (0.3,))
            results = _run_suite(suite, ["test_blocked_destination_never_blocks_report"], tmp_path)
    finally:
        BlockingReporter.release.set()
    assert "blocks" in results["test_blocked_destination_never_blocks_report"]


def test_reporter_contract_requires_a_blocked_reporter(tmp_path: Path) -> None:
    suite = type("Suite", (ReporterContract,), {"spec": _reporter_spec(ListReporter)})
    results = _run_suite(suite, ["test_blocked_destination_never_blocks_report"], tmp_path)
    assert (
        "must implement make_blocked_reporter"
        in results["test_blocked_destination_never_blocks_report"]
    )


# -- capturers ----------------------------------------------------------------------------------


class TestPcapCapturer(CapturerContract):
    """The built-in pcap capturer over a file the test writes."""

    expected_packets = 25

    def make_capturer(self, tmp_path: Path) -> Any:
        frames = [ethernet_udp_frame(b"x" * i, sport=1000 + i) for i in range(25)]
        path = write_pcap(tmp_path / "c.pcap", frames)
        (spec,) = otus_capturers()
        options = PcapOptions(path=str(path), batch_packets=10)
        return spec.factory(options, PluginContext())
