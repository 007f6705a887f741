"""Contract suites: the behaviour every plugin of a kind owes the pipeline, as reusable tests.

A plugin author subclasses one of these in a test module; pytest then runs the inherited
``test_*`` methods against the plugin::

    from otus.testing import ParserContract, udp_datagram
    from my_plugin.plugin import SPEC

    class TestMyParser(ParserContract):
        spec = SPEC
        samples = [b"<34>1 2003-10-11T22:14:15.003Z host app - - - hello"]

Each suite builds the plugin through its spec (``spec.factory(options, context)``), exactly as the
pipeline does. Override ``make_…`` methods to build it differently. Bounds such as
:data:`LIVENESS_TIMEOUT` are liveness limits (the call must return at all), never speed checks.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from otus.capture import PACKET_DESC, Capturer, RawBatch
from otus.context import PluginContext
from otus.parsing import TRANSPORTS, Datagram, Interest, Parser
from otus.processing import Processor
from otus.records import Record, record_to_dict
from otus.reporting import Reporter
from otus.specs import CapturerSpec, ParserSpec, PluginSpec, ProcessorSpec, ReporterSpec
from otus.testing.packets import make_record, udp_datagram

__all__ = [
    "LABEL_NAME",
    "LIVENESS_TIMEOUT",
    "CapturerContract",
    "ParserContract",
    "ProcessorContract",
    "ReporterContract",
    "call_bounded",
]

#: A label name: ``{protocol}.{field}`` in lower case (``sip.method``, ``syslog.app``).
LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
#: Seconds a call that must not block gets before the contract declares it blocked.
LIVENESS_TIMEOUT = 10.0

T = TypeVar("T")


def call_bounded(fn: Callable[[], T], what: str, timeout: float = LIVENESS_TIMEOUT) -> T:
    """Run ``fn`` in a thread and fail the test if it has not returned after ``timeout`` s."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the test thread below
            error.append(exc)

    thread = threading.Thread(target=target, name=f"otus-contract-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{what} did not return within {timeout} s: it blocks")
    if error:
        raise error[0]
    return result[0]


def _check_stats(stats: object, owner: str) -> dict[str, int]:
    assert isinstance(stats, dict), f"{owner}.stats() must return a dict, got {type(stats)}"
    for key, value in stats.items():
        assert isinstance(key, str), f"{owner}.stats() key {key!r} is not a string"
        assert key, f"{owner}.stats() has an empty key"
        assert type(value) is int, f"{owner}.stats()[{key!r}] = {value!r} is not a plain int"
    return stats


def _check_record(record: object, owner: str) -> Record:
    assert isinstance(record, Record), f"{owner} returned {type(record)}, not otus.Record"
    assert record.payload_type, f"{owner}: empty payload_type"
    assert record.payload_type == record.payload_type.lower(), (
        f"{owner}: payload_type {record.payload_type!r} must be lower case"
    )
    for name, value in record.labels.items():
        assert LABEL_NAME.match(name), (
            f"{owner}: label {name!r} is not a lower-case '{{protocol}}.{{field}}' name"
        )
        assert isinstance(value, str), f"{owner}: label {name!r} value {value!r} is not a str"
    assert isinstance(record.raw_payload, bytes), f"{owner}: raw_payload must be bytes"
    json.dumps(record_to_dict(record))  # the wire shape must serialise
    return record


def _dropped(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("dropped."))


class _SpecContract:
    """Checks shared by every kind: the spec and its options model."""

    spec: ClassVar[PluginSpec[Any]]
    spec_type: ClassVar[type[PluginSpec[Any]]] = PluginSpec
    #: Options as they would appear in the plugin's ``config`` table of a task file.
    options: ClassVar[dict[str, Any]] = {}

    def make_context(self) -> PluginContext:
        """The context handed to the factory; override to set node tags, shared state…"""
        return PluginContext(task_id="contract", agent_id="contract-agent")

    def make_options(self) -> BaseModel:
        return self.spec.options_model.model_validate(self.options)

    def test_spec_is_valid(self) -> None:
        spec = self.spec
        assert isinstance(spec, self.spec_type), f"spec must be a {self.spec_type.__name__}"
        assert spec.name == spec.name.lower(), f"plugin name {spec.name!r} must be lower case"
        assert spec.summary.strip(), "spec.summary must say in a line what the plugin does"
        assert callable(spec.factory)
        self.make_options()  # the contract's options validate

    def test_options_forbid_unknown_keys(self) -> None:
        with pytest.raises(ValidationError):
            self.spec.options_model.model_validate({**self.options, "no_such_option_x": 1})

    def test_options_defaults_are_documented(self) -> None:
        for name, field in self.spec.options_model.model_fields.items():
            assert field.description, f"option {name!r} has no description (Field(description=…))"


class ParserContract(_SpecContract):
    """What every parser owes the pipeline (see :class:`otus.Parser`).

    Set ``spec`` and ``samples`` (payload bytes or :class:`otus.Datagram` objects that each make
    at least one record); optionally ``options``. Bytes samples are sent to ``sample_port``
    (default: the lowest port of the parser's interest, else 9).
    """

    spec_type = ParserSpec
    samples: ClassVar[Sequence[bytes | Datagram]] = ()
    sample_port: ClassVar[int | None] = None
    #: Set False for parsers that need several datagrams before they emit a record.
    expect_record_per_sample: ClassVar[bool] = True

    def make_parser(self) -> Parser:
        return self.spec.factory(self.make_options(), self.make_context())  # type: ignore[no-any-return]

    def sample_datagrams(self, parser: Parser) -> list[Datagram]:
        assert self.samples, f"{type(self).__name__}.samples is empty: give at least one payload"
        port = self.sample_port
        if port is None:
            ports = sorted(parser.interest().ports)
            port = ports[0] if ports else 9
        return [
            s if isinstance(s, Datagram) else udp_datagram(bytes(s), dport=port)
            for s in self.samples
        ]

    def garbage_payloads(self) -> list[bytes]:
        """Inputs no parser may raise on: empty, random, truncated and mangled samples."""
        rng = random.Random(20240101)
        out = [b"", b"\0", b"\xff" * 7, b"\r\n\r\n", b" " * 64]
        out += [rng.randbytes(n) for n in (1, 2, 3, 8, 64, 512, 1500, 9000)]
        for s in self.samples:
            raw = bytes(s.payload) if isinstance(s, Datagram) else bytes(s)
            out += [raw[: len(raw) // 2], raw[:1], raw[::-1], raw.replace(b" ", b"\0")]
            mangled = bytearray(raw)
            for _ in range(max(1, len(raw) // 16)):
                if mangled:
                    mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            out.append(bytes(mangled))
        return out

    def test_factory_builds_a_parser(self) -> None:
        parser = self.make_parser()
        assert isinstance(parser, Parser)
        assert parser.payload_type, "Parser.payload_type is empty"
        assert parser.payload_type == parser.payload_type.lower()

    def test_interest_is_sane(self) -> None:
        interest = self.make_parser().interest()
        assert isinstance(interest, Interest)
        assert interest.transports, "interest() wants no transport: the parser would see nothing"
        assert set(interest.transports) <= TRANSPORTS
        if interest.tcp_stream:
            assert "tcp" in interest.transports, "tcp_stream needs 'tcp' in transports"
        for prefix in interest.prefixes:
            assert isinstance(prefix, bytes), "prefixes must be bytes"
            assert prefix, "an empty prefix matches everything: leave prefixes empty instead"

    def test_parse_samples_makes_records(self) -> None:
        parser = self.make_parser()
        owner = f"{type(parser).__name__}.parse"
        total = 0
        for dgram in self.sample_datagrams(parser):
            records = parser.parse([dgram])
            assert isinstance(records, list), f"{owner} must return a list"
            if self.expect_record_per_sample:
                assert records, f"{owner} made no record from sample {bytes(dgram.payload)[:60]!r}"
            for record in records:
                _check_record(record, owner)
                assert (record.src_ip, record.src_port) == (dgram.src_ip, dgram.src_port)
                assert (record.dst_ip, record.dst_port) == (dgram.dst_ip, dgram.dst_port)
            total += len(records)
        assert total, f"{owner} made no record from any sample"
        _check_stats(parser.stats(), type(parser).__name__)

    def test_records_do_not_keep_the_capture_buffer(self) -> None:
        """The payload memoryview is only valid during ``parse``: records must copy it."""
        parser = self.make_parser()
        for dgram in self.sample_datagrams(parser):
            original = bytes(dgram.payload)
            buffer = bytearray(original)
            view = Datagram(
                dgram.ts_ns,
                dgram.src_ip,
                dgram.dst_ip,
                dgram.src_port,
                dgram.dst_port,
                dgram.protocol,
                memoryview(buffer),
                dgram.vlan_id,
                dgram.ifindex,
            )
            records = parser.parse([view])
            before = [(r.raw_payload, json.dumps(record_to_dict(r))) for r in records]
            buffer[:] = b"\0" * len(buffer)  # the capture buffer is reused for the next block
            after = [(r.raw_payload, json.dumps(record_to_dict(r))) for r in records]
            assert before == after, "a record refers to the capture buffer after parse returned"

    def test_garbage_never_raises_and_is_counted(self) -> None:
        parser = self.make_parser()
        name = type(parser).__name__
        port = self.sample_datagrams(parser)[0].dst_port
        for payload in self.garbage_payloads():
            before = _check_stats(parser.stats(), name)
            records = parser.parse([udp_datagram(payload, dport=port)])
            assert isinstance(records, list)
            for record in records:
                _check_record(record, f"{name}.parse")
            # an error.<reason>, or another counter for input that is valid but makes no record
            # (a SIP keep-alive), must move: nothing is dropped silently
            counted = _check_stats(parser.stats(), name) != before
            assert records or counted or not self.expect_record_per_sample, (
                f"{name}.parse dropped {payload[:40]!r} without counting it in stats() "
                "(count it as error.<reason>)"
            )

    def test_batch_of_mixed_input(self) -> None:
        """One bad payload in a batch does not cost the good ones their records."""
        parser = self.make_parser()
        good = self.sample_datagrams(parser)
        port = good[0].dst_port
        bad = [udp_datagram(p, dport=port) for p in (b"", b"\xff\xfe garbage")]
        records = parser.parse([bad[0], *good, bad[1]])
        if self.expect_record_per_sample:
            assert len(records) >= len(good)

    def test_tick_and_close(self) -> None:
        parser = self.make_parser()
        dgrams = self.sample_datagrams(parser)
        parser.parse(dgrams)
        last = max(d.ts_ns for d in dgrams)
        for record in parser.tick(last + 3_600 * 10**9):
            _check_record(record, "tick")
        closing = parser.close()
        assert isinstance(closing, list)
        for record in closing:
            _check_record(record, "close")
        _check_stats(parser.stats(), type(parser).__name__)


class ProcessorContract(_SpecContract):
    """What every processor owes the pipeline (see :class:`otus.Processor`).

    Set ``spec`` (and ``options``); override ``sample_records`` for input that exercises it.
    """

    spec_type = ProcessorSpec

    def make_processor(self) -> Processor:
        return self.spec.factory(self.make_options(), self.make_context())  # type: ignore[no-any-return]

    def sample_records(self) -> list[Record]:
        return [
            make_record("sip", labels={"sip.method": "INVITE", "sip.call_id": "a@b"}),
            make_record("sip", labels={"sip.status_code": "200"}, src="10.1.2.3", dport=5080),
            make_record("raw", src="2001:db8::1", dst="2001:db8::2", sport=1234, dport=514),
            make_record("rtp", protocol=17, sport=10000, dport=20000),
        ]

    def test_factory_builds_a_processor(self) -> None:
        assert isinstance(self.make_processor(), Processor)

    def test_process_passes_on_input_records_only(self) -> None:
        processor = self.make_processor()
        records = self.sample_records()
        ids = {id(r) for r in records}
        out = processor.process(list(records))
        assert isinstance(out, list)
        assert len(out) <= len(records)
        for record in out:
            assert id(record) in ids, "process() must pass on the records it was given"
            _check_record(record, f"{type(processor).__name__}.process")
        _check_stats(processor.stats(), type(processor).__name__)

    def test_empty_batch(self) -> None:
        assert self.make_processor().process([]) == []

    def test_many_batches_and_close(self) -> None:
        processor = self.make_processor()
        for _ in range(50):
            processor.process(self.sample_records())
        processor.close()
        _check_stats(processor.stats(), type(processor).__name__)


class ReporterContract(_SpecContract):
    """What every reporter owes the pipeline (see :class:`otus.Reporter`).

    Set ``spec`` (and ``options``) and implement :meth:`make_blocked_reporter`: a reporter whose
    destination accepts nothing (a pipe nobody reads, a broker that does not answer). Override
    :meth:`delivered` to let the suite check what arrived.
    """

    spec_type = ReporterSpec
    #: Records sent to the blocked reporter: enough to overflow any sane bounded buffer.
    overflow_records: ClassVar[int] = 20_000

    def make_reporter(self, tmp_path: Path) -> Reporter:
        return self.spec.factory(self.make_options(), self.make_context())  # type: ignore[no-any-return]

    def make_blocked_reporter(self, tmp_path: Path) -> tuple[Reporter, Callable[[], None]]:
        """A reporter whose destination blocks, and a function that unblocks it (cleanup)."""
        pytest.fail(
            f"{type(self).__name__} must implement make_blocked_reporter(): every reporter must "
            "show that a destination that accepts nothing never blocks report()"
        )

    def delivered(self, reporter: Reporter, tmp_path: Path) -> int | None:
        """How many records reached the destination, or ``None`` when the test cannot tell."""
        return None

    def sample_records(self, n: int = 10) -> list[Record]:
        return [
            make_record(
                "sip",
                labels={"sip.method": "INVITE", "sip.call_id": f"call-{i}"},
                raw_payload=b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n",
                payload={"method": "INVITE", "seq": i},
                sport=40000 + i,
            )
            for i in range(n)
        ]

    def test_factory_builds_a_reporter(self, tmp_path: Path) -> None:
        assert isinstance(self.make_reporter(tmp_path), Reporter)

    def test_report_flush_close(self, tmp_path: Path) -> None:
        reporter = self.make_reporter(tmp_path)
        reporter.start()
        reporter.report([])
        for _ in range(3):
            reporter.report(self.sample_records(10))
        assert call_bounded(lambda: reporter.flush(5.0), "flush(5.0)"), "flush did not finish"
        stats = _check_stats(reporter.stats(), type(reporter).__name__)
        for key in ("records", "errors", "buffer_records"):
            assert key in stats, f"stats() lacks {key!r}"
        assert stats["records"] == 30, f"30 records reported, stats say {stats['records']}"
        assert stats["errors"] == 0
        assert _dropped(stats) == 0
        assert stats["buffer_records"] == 0, "flush returned True with records still buffered"
        call_bounded(lambda: reporter.close(5.0), "close(5.0)")
        delivered = self.delivered(reporter, tmp_path)
        if delivered is not None:
            assert delivered == 30

    def test_blocked_destination_never_blocks_report(self, tmp_path: Path) -> None:
        reporter, unblock = self.make_blocked_reporter(tmp_path)
        try:
            reporter.start()
            batch = self.sample_records(100)
            batches = self.overflow_records // len(batch)

            def flood() -> None:
                for _ in range(batches):
                    reporter.report(batch)

            call_bounded(flood, "report() to a blocked destination")
            stats = _check_stats(reporter.stats(), type(reporter).__name__)
            assert _dropped(stats) > 0, "nothing dropped: the buffer is not bounded"
            call_bounded(lambda: reporter.flush(0.2), "flush(0.2)")
            call_bounded(lambda: reporter.close(0.2), "close(0.2)")
            stats = _check_stats(reporter.stats(), type(reporter).__name__)
            accounted = stats["records"] + stats["errors"] + _dropped(stats)
            assert accounted == batches * len(batch), (
                f"{batches * len(batch)} reported but records+errors+dropped = {accounted}: "
                "after close every record is delivered, failed or dropped, and counted once"
            )
        finally:
            unblock()


class CapturerContract:
    """What every capturer owes the pipeline (see :class:`otus.Capturer`).

    Implement :meth:`make_capturer` (e.g. over a pcap file, or an interface the test set up) and
    set ``expected_packets`` when the source's packet count is known.
    """

    spec: ClassVar[CapturerSpec | None] = None
    expected_packets: ClassVar[int | None] = None

    def make_capturer(self, tmp_path: Path) -> Capturer:
        raise NotImplementedError(f"{type(self).__name__} must implement make_capturer()")

    def check_batch(self, batch: RawBatch) -> int:
        assert isinstance(batch, RawBatch)
        assert batch.count >= 0
        descs = memoryview(batch.descs).cast("B")
        data_len = len(memoryview(batch.data).cast("B"))
        assert len(descs) >= batch.count * PACKET_DESC.size, "fewer descriptors than count"
        for i in range(batch.count):
            ts_ns, offset, caplen, wirelen, _ifindex, _lt, _tci, _tpid, _flags = (
                PACKET_DESC.unpack_from(descs, i * PACKET_DESC.size)
            )
            assert ts_ns > 0, f"packet {i}: timestamp {ts_ns}"
            assert offset + caplen <= data_len, f"packet {i} runs past the end of the buffer"
            assert caplen <= wirelen, f"packet {i}: caplen {caplen} > wirelen {wirelen}"
        return batch.count

    def _drain(self, batches: Iterable[RawBatch]) -> int:
        total = 0
        for batch in batches:
            total += self.check_batch(batch)
            batch.release()
            batch.release()  # idempotent
        return total

    def test_batches_are_consistent(self, tmp_path: Path) -> None:
        capturer = self.make_capturer(tmp_path)
        capturer.open()
        try:
            if self.expected_packets is None:
                # a live source never ends by itself: stop it after the first batch
                it = iter(capturer.batches())
                first = call_bounded(lambda: next(it, None), "first batch")
                if first is not None:
                    self.check_batch(first)
                    first.release()
                capturer.stop()
                call_bounded(lambda: self._drain(it), "batches() after stop()")
            else:
                total = call_bounded(lambda: self._drain(capturer.batches()), "batches()")
                assert total == self.expected_packets
            _check_stats(capturer.stats(), type(capturer).__name__)
            done, size = capturer.progress()
            assert isinstance(done, int)
            assert size is None or isinstance(size, int)
        finally:
            capturer.close()

    def test_stop_ends_batches(self, tmp_path: Path) -> None:
        capturer = self.make_capturer(tmp_path)
        capturer.open()
        try:
            capturer.stop()
            capturer.stop()  # idempotent
            call_bounded(lambda: self._drain(capturer.batches()), "batches() after stop()")
        finally:
            capturer.close()
