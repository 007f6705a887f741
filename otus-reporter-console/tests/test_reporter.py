"""The console reporter: formats, outputs, and its bounded, never-blocking buffer."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from otus import Reporter
from otus.testing import ReporterContract, call_bounded, make_record
from otus_reporter_console import ConsoleOptions, ConsoleReporter
from otus_reporter_console.plugin import SPEC


class GateStream:
    """A binary stream whose write() blocks until released: a terminal nobody scrolls."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.data = bytearray()

    def write(self, data: bytes | memoryview) -> int:
        self.entered.set()
        self.gate.wait()
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class BrokenStream(GateStream):
    def write(self, data: bytes | memoryview) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def _fifo_reporter(tmp_path: Path, **options: object) -> tuple[ConsoleReporter, Callable[[], None]]:
    """A reporter writing to a FIFO that is open for reading but never read."""
    fifo = tmp_path / "slow-terminal"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # keeps open() of the writer from waiting
    reporter = ConsoleReporter(ConsoleOptions(output=str(fifo), format="json", **options))  # type: ignore[arg-type]

    def unblock() -> None:
        os.close(reader)  # the writer gets EPIPE and the writer thread ends

    return reporter, unblock


class TestConsoleContract(ReporterContract):
    spec = SPEC
    options: ClassVar[dict[str, Any]] = {"format": "json"}

    def make_reporter(self, tmp_path: Path) -> Reporter:
        return ConsoleReporter(ConsoleOptions(format="json", output=str(tmp_path / "out.jsonl")))

    def make_blocked_reporter(self, tmp_path: Path) -> tuple[Reporter, Callable[[], None]]:
        return _fifo_reporter(tmp_path, buffer_records=1000)

    def delivered(self, reporter: Reporter, tmp_path: Path) -> int | None:
        return len((tmp_path / "out.jsonl").read_text().splitlines())


def test_json_lines_are_the_wire_shape(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    out.write_text('{"earlier": "line"}\n')  # output is appended to
    reporter = ConsoleReporter(ConsoleOptions(output=str(out)))
    record = make_record(
        "sip", labels={"sip.method": "BYE"}, raw_payload=b"BYE sip:a SIP/2.0", payload={"x": 1}
    )
    reporter.report([record])
    reporter.close(5.0)
    lines = out.read_text().splitlines()
    assert lines[0] == '{"earlier": "line"}'
    value = json.loads(lines[1])
    assert value["labels"] == {"sip.method": "BYE"}
    assert value["payload"] == {"x": 1}
    assert value["raw_payload_len"] == 17
    assert value["timestamp"] == record.timestamp_ms
    assert "raw_payload" not in value  # include_raw defaults to off
    assert reporter.stats()["records"] == 1


def test_include_raw_adds_base64_payload(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    reporter = ConsoleReporter(ConsoleOptions(output=str(out), include_raw=True))
    reporter.report([make_record(raw_payload=b"\x00\xffOPTIONS")])
    reporter.close(5.0)
    value = json.loads(out.read_text())
    assert base64.b64decode(value["raw_payload"]) == b"\x00\xffOPTIONS"


def test_text_form_is_one_readable_line(tmp_path: Path) -> None:
    out = tmp_path / "records.txt"
    reporter = ConsoleReporter(ConsoleOptions(output=str(out), format="text"))
    reporter.report(
        [
            make_record(
                "sip",
                labels={"sip.call_id": "abc@host", "sip.method": "INVITE", "sip.from_uri": "a b"},
                raw_payload=b"x" * 42,
            ),
            make_record("rtp", src="2001:db8::1", dst="2001:db8::2", sport=10000, dport=20000),
        ]
    )
    reporter.close(5.0)
    first, second = out.read_text().splitlines()
    assert first == (
        "2024-01-01T00:00:00.000000Z sip udp 192.0.2.1:40000 -> 192.0.2.2:5060 "
        'method=INVITE call_id=abc@host from_uri="a b" len=42'
    )
    assert second == (
        "2024-01-01T00:00:00.000000Z rtp udp [2001:db8::1]:10000 -> [2001:db8::2]:20000 len=0"
    )


def test_text_form_escapes_terminal_control_characters() -> None:
    stream = GateStream()
    stream.gate.set()
    reporter = ConsoleReporter(ConsoleOptions(format="text"), stream=stream)
    reporter.report([make_record(labels={"sip.user_agent": "evil\x1b[2J\x9b"})])
    reporter.close(5.0)
    line = stream.data.decode()
    assert "\x1b" not in line
    assert "\x9b" not in line
    assert 'user_agent="evil\\u001b[2J\\u009b"' in line


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere(tmp_path: Path) -> None:
    main, follower = os.openpty()
    try:
        with open(follower, "wb", buffering=0, closefd=False) as tty:
            reporter = ConsoleReporter(ConsoleOptions(), stream=tty)
            reporter.report([make_record(labels={"sip.method": "ACK"})])
            reporter.close(5.0)
        assert b"method=ACK" in os.read(main, 4096)
    finally:
        os.close(main)
        os.close(follower)
    stream = GateStream()
    stream.gate.set()
    reporter = ConsoleReporter(ConsoleOptions(), stream=stream)
    reporter.report([make_record(labels={"sip.method": "ACK"})])
    reporter.close(5.0)
    assert json.loads(stream.data)["labels"] == {"sip.method": "ACK"}


def test_stdout_is_the_default_output(capfd: pytest.CaptureFixture[str]) -> None:
    reporter = ConsoleReporter(ConsoleOptions(format="json"))
    reporter.report([make_record(labels={"sip.method": "REGISTER"})])
    reporter.close(5.0)
    assert json.loads(capfd.readouterr().out)["labels"]["sip.method"] == "REGISTER"


def test_blocked_writer_drops_exactly_what_does_not_fit() -> None:
    stream = GateStream()
    reporter = ConsoleReporter(ConsoleOptions(buffer_records=100), stream=stream)
    reporter.report([make_record()])  # the writer takes this one and blocks in write()
    assert stream.entered.wait(10)
    batch = [make_record(sport=i) for i in range(30)]
    call_bounded(lambda: [reporter.report(batch) for _ in range(10)], "report() while blocked")
    stats = reporter.stats()
    assert stats["buffer_records"] == 100
    assert stats["dropped.buffer_full"] == 300 - 100
    assert stats["records"] == 0
    stream.gate.set()
    assert reporter.flush(10.0)
    assert reporter.stats()["records"] == 101
    assert len(stream.data.splitlines()) == 101
    reporter.close(5.0)


def test_byte_limit_bounds_the_buffer_too() -> None:
    stream = GateStream()
    reporter = ConsoleReporter(
        ConsoleOptions(buffer_records=10_000, buffer_bytes=4096, format="json"), stream=stream
    )
    reporter.report([make_record()])
    assert stream.entered.wait(10)
    reporter.report([make_record(sport=i) for i in range(1000)])
    stats = reporter.stats()
    assert 0 < stats["buffer_bytes"] <= 4096
    assert stats["buffer_records"] + stats["dropped.buffer_full"] == 1000
    stream.gate.set()
    reporter.close(5.0)
    assert reporter.stats()["records"] == 1 + stats["buffer_records"]


def test_close_gives_up_on_a_blocked_writer_and_counts_once() -> None:
    stream = GateStream()
    reporter = ConsoleReporter(ConsoleOptions(buffer_records=10), stream=stream)
    reporter.report([make_record()])
    assert stream.entered.wait(10)
    reporter.report([make_record() for _ in range(15)])
    call_bounded(lambda: reporter.close(0.1), "close(0.1)")
    stats = reporter.stats()
    assert stats["dropped.closed"] == 11  # 10 buffered + 1 stuck in write()
    assert stats["dropped.buffer_full"] == 5
    stream.gate.set()  # the stuck write completes after close: not counted a second time
    reporter.report([make_record()])
    assert reporter._thread is not None
    reporter._thread.join(10)
    stats = reporter.stats()
    assert stats["records"] == 0
    assert stats["dropped.closed"] == 12


def test_slow_fifo_never_blocks_report(tmp_path: Path) -> None:
    reporter, unblock = _fifo_reporter(tmp_path, buffer_records=500)
    try:
        batch = [make_record(raw_payload=b"x" * 200, sport=i) for i in range(100)]
        call_bounded(lambda: [reporter.report(batch) for _ in range(100)], "report() to a FIFO")
        stats = reporter.stats()
        # the pipe took some bytes, the buffer holds at most 500: everything else was dropped
        assert stats["dropped.buffer_full"] > 0
        assert stats["buffer_records"] <= 500
    finally:
        unblock()
        reporter.close(5.0)
    stats = reporter.stats()
    assert (
        stats["records"] + stats["errors"] + stats["dropped.buffer_full"] + stats["dropped.closed"]
        == 10_000
    )


def test_write_errors_are_counted() -> None:
    reporter = ConsoleReporter(ConsoleOptions(), stream=BrokenStream())
    reporter.report([make_record() for _ in range(7)])
    assert reporter.flush(10.0)
    stats = reporter.stats()
    assert stats["errors"] == 7
    assert stats["write_failures"] == 1
    assert stats["records"] == 0
    reporter.close(1.0)


def test_a_failing_output_is_logged_once_with_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A full disk (ENOSPC) or a closed pipe names itself in the log, not only in a counter."""
    full = Path("/dev/full")
    if not full.exists():
        pytest.fail("/dev/full is missing")
    reporter = ConsoleReporter(ConsoleOptions(format="json", output=str(full)))
    with caplog.at_level("WARNING", logger="otus_reporter_console"):
        for _ in range(3):
            reporter.report([make_record() for _ in range(4)])
            assert reporter.flush(10.0)
        reporter.close(1.0)
    assert reporter.stats()["errors"] == 12
    lines = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(lines) == 1  # once, not per write
    assert "/dev/full" in lines[0]
    assert "No space left on device" in lines[0]


def test_unserialisable_payload_is_an_error_not_a_crash() -> None:
    stream = GateStream()
    stream.gate.set()
    reporter = ConsoleReporter(ConsoleOptions(format="json"), stream=stream)
    reporter.report([make_record(payload={"bad": object()}), make_record()])
    reporter.close(5.0)
    assert reporter.stats()["errors"] == 1
    assert reporter.stats()["records"] == 1


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    from otus import PluginError

    reporter = ConsoleReporter(ConsoleOptions(output=str(tmp_path / "no" / "such" / "dir.log")))
    with pytest.raises(PluginError, match="cannot open output"):
        reporter.start()


@pytest.mark.parametrize(
    "config",
    [{"format": "yaml"}, {"buffer_records": 0}, {"output": ""}, {"colour": True}],
)
def test_bad_options_are_rejected(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ConsoleOptions.model_validate(config)


def test_wait_for_room_holds_until_the_writer_made_room() -> None:
    """What a file source does before each batch: wait instead of losing records."""
    stream = GateStream()
    reporter = ConsoleReporter(ConsoleOptions(buffer_records=10, format="json"), stream=stream)
    reporter.report([make_record()])
    assert stream.entered.wait(10)
    reporter.report([make_record(sport=i) for i in range(8)])
    assert not reporter.wait_for_room(5, 0.1)  # 8 + 5 > 10 while the writer is blocked
    assert reporter.wait_for_room(2, 0.0)
    stream.gate.set()
    assert reporter.wait_for_room(10, 10.0)  # the writer took the buffer
    assert reporter.stats()["dropped.buffer_full"] == 0
    reporter.close(5.0)
    assert reporter.wait_for_room(1000, 0.0)  # closed: report() counts what it refuses


def _compact(value: object) -> bytes:
    """JSON as a parser hands it (``orjson.dumps``: compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("include_raw", [False, True])
@pytest.mark.parametrize(
    ("labels", "payload"),
    [
        ({"sip.method": "INVITE", "sip.call_id": "a@b"}, {"kind": "request", "n": [1, 2, {}]}),
        ({'q"uote': "back\\slash", "ctl": "\x1b[31m\n\t"}, {"s": "\x00\x7f", "t": True, "n": None}),
        ({}, {}),
        ({"caller": "Zoë"}, {"display": "Zoë"}),  # not ASCII: encoded the other way, same line
    ],
)
def test_lines_from_serialised_labels_and_payload_are_the_same_bytes(
    labels: dict[str, str], payload: dict[str, object], include_raw: bool
) -> None:
    from otus import Record
    from otus_reporter_console._format import json_line

    def record(**kw: object) -> Record:
        return Record(
            ts_ns=1_700_000_000_123_456_789, src_ip="2001:db8::1", dst_ip="192.0.2.2",
            src_port=5060, dst_port=5062, protocol=17, payload_type="sip",
            raw_payload=b"INVITE sip:x SIP/2.0\r\n", task_id="t\u00e9", agent_id="edge-1",
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    fmt = json_line(include_raw)
    spliced = fmt(record(labels_json=_compact(labels), payload_json=_compact(payload)))
    plain = fmt(record(labels=dict(labels), payload=payload))
    assert spliced == plain
    assert json.loads(spliced)["labels"] == labels
