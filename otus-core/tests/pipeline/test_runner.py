"""The run loop: data flow, batch release, plugin failures, ticks, stop, capture errors."""

from __future__ import annotations

import json
import logging
import threading
from types import SimpleNamespace

import pytest

from otus import Interest
from otus._pipeline.runner import Runner
from otus.errors import CaptureError
from otus.testing.packets import DEFAULT_TS_NS, raw_batch

SECOND = 1_000_000_000


def test_records_flow_from_capture_to_reporter_stamped_with_ids(fakes: SimpleNamespace) -> None:
    capturer = fakes.ListCapturer([fakes.sip_batch(4, other=3), fakes.sip_batch(2, other=1)])
    parser = fakes.CountingParser()
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(
        capturer, [parser], [fakes.KeepEvery(2)], [reporter], labels={"site": "lab"}
    )

    result = Runner(pipeline).run()

    assert result.status == "completed"
    assert result.error is None
    assert parser.calls == 2
    assert parser.datagrams == 6
    payloads = [r.raw_payload for r in reporter.records]
    assert payloads == [b"OPTIONS 0", b"OPTIONS 2", b"OPTIONS 0"]  # every 2nd of each batch
    for r in reporter.records:
        assert (r.task_id, r.agent_id, r.pipeline_id) == ("t1", "agent-1", 3)
        assert r.labels == {"test.kind": "datagram", "site": "lab"}
    assert capturer.released == [0, 1]
    assert capturer.calls == ["open", "close"]
    assert reporter.events == ["start", "flush", "close"]
    assert parser.closed

    c = result.snapshot["counters"]
    assert c["capture.batches"] == 2
    assert c["capture.packets"] == 10
    assert c["decode.decoded"] == 10
    assert c["parse.counting.in"] == 6
    assert c["parse.counting.records"] == 6
    assert c["parse.counting.messages"] == 6  # the parser's own stats, namespaced
    assert c["process.keep.in"] == 6
    assert c["process.keep.out"] == 3
    assert c["report.collect.in"] == 3
    assert c["records.reported"] == 3
    assert c["records.parsed"] == 6
    assert result.snapshot["gauges"]["report.collect.buffer_records"] == 0
    json.dumps(result.snapshot)  # shippable as is


def test_a_parser_exception_is_counted_and_the_run_goes_on(
    fakes: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    batches = [fakes.sip_batch(3) for _ in range(5)]
    capturer = fakes.ListCapturer(batches)
    parser = fakes.CountingParser(fail=lambda n: n in (2, 3, 4))
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(capturer, [parser], [], [reporter])

    with caplog.at_level(logging.ERROR, logger="otus.pipeline"):
        result = Runner(pipeline).run()

    assert result.status == "completed"
    assert len(reporter.records) == 6  # batches 1 and 5
    assert capturer.released == [0, 1, 2, 3, 4]  # released also when parsing raised
    c = result.snapshot["counters"]
    assert c["errors.parse.counting"] == 3
    assert c["lost.parse.counting"] == 9
    logged = [r for r in caplog.records if "fails on purpose" in r.getMessage()]
    assert len(logged) == 1  # once per type, then rate-limited


def test_processor_and_reporter_failures_lose_only_their_batch(fakes: SimpleNamespace) -> None:
    capturer = fakes.ListCapturer([fakes.sip_batch(2) for _ in range(3)])
    failing = fakes.CollectingReporter(fail=lambda n: n == 1)
    healthy = fakes.CollectingReporter()
    processor = fakes.KeepEvery(1, fail=lambda n: n == 2)
    pipeline = fakes.make_pipeline(
        capturer, [fakes.CountingParser()], [processor], [failing, healthy]
    )

    result = Runner(pipeline).run()

    assert result.status == "completed"
    assert len(healthy.records) == 4  # batch 2 lost in the processor
    assert len(failing.records) == 2  # batch 1 lost in this reporter only
    c = result.snapshot["counters"]
    assert c["errors.process.keep"] == 1
    assert c["lost.process.keep"] == 2
    assert c["errors.report.collect"] == 1
    assert c["lost.report.collect"] == 2
    assert c["errors.report.collect#2"] == 0  # the second instance has its own name


def test_batches_are_released_even_when_the_decoder_is_handed_garbage(
    fakes: SimpleNamespace,
) -> None:
    garbage = raw_batch([b"\x00" * 5, b"\xff" * 60], linktype=1)
    capturer = fakes.ListCapturer([garbage, fakes.sip_batch(1)])
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(capturer, [fakes.CountingParser()], [], [reporter])

    result = Runner(pipeline).run()

    assert capturer.released == [0, 1]
    assert len(reporter.records) == 1
    c = result.snapshot["counters"]
    assert c["capture.packets"] == 3
    assert c["decode.error.truncated_l2"] >= 1


def test_ticks_follow_capture_time_and_their_records_are_reported(
    fakes: SimpleNamespace,
) -> None:
    # five batches half a second of capture time apart: 2.5 s of traffic
    batches = [fakes.sip_batch(1, ts_ns=DEFAULT_TS_NS + i * SECOND // 2) for i in range(6)]
    parser = fakes.CountingParser(tick_records=1, close_records=2)
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(fakes.ListCapturer(batches), [parser], [], [reporter])

    result = Runner(pipeline, tick_interval=1.0).run()

    assert parser.ticks, "no tick in 2.5 s of capture time"
    assert all(DEFAULT_TS_NS + SECOND <= t <= DEFAULT_TS_NS + 5 * SECOND // 2 for t in parser.ticks)
    assert parser.ticks == sorted(parser.ticks)
    payloads = [r.raw_payload for r in reporter.records]
    assert payloads.count(b"tick") == len(parser.ticks)
    assert payloads.count(b"close") == 2
    assert all(r.task_id == "t1" for r in reporter.records)
    assert result.snapshot["counters"]["records.parsed"] == len(reporter.records)


def test_an_idle_live_source_still_gets_ticks(fakes: SimpleNamespace) -> None:
    """A live capturer yields empty batches when nothing arrives; ticks then use wall time."""
    empty = raw_batch([])
    ticked = threading.Event()
    parser = fakes.CountingParser()
    capturer = fakes.ListCapturer(
        [fakes.sip_batch(1), empty],
        forever=False,
        on_batch=lambda i: ticked.wait(0.05),
    )
    capturer._batches += [empty] * 20
    snapshots: list[int] = []
    pipeline = fakes.make_pipeline(capturer, [parser], [], [fakes.CollectingReporter()])
    runner = Runner(pipeline, tick_interval=0.01, on_tick=lambda: snapshots.append(1))

    result = runner.run()

    c = result.snapshot["counters"]
    assert c["capture.empty_batches"] == 21
    assert c["pipeline.ticks"] >= 1
    assert snapshots
    assert parser.ticks
    assert all(t >= DEFAULT_TS_NS for t in parser.ticks)
    assert capturer.released == list(range(22))


def test_stop_from_another_thread_ends_an_endless_source(fakes: SimpleNamespace) -> None:
    holder: dict[str, Runner] = {}

    def after(i: int) -> None:
        if i == 50:
            threading.Thread(target=holder["runner"].stop).start()

    capturer = fakes.ListCapturer([fakes.sip_batch(2)], forever=True, on_batch=after)
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(capturer, [fakes.CountingParser()], [], [reporter])
    holder["runner"] = runner = Runner(pipeline)

    result = runner.run()

    assert result.status == "stopped"
    assert capturer.yielded >= 50
    assert capturer.released == list(range(capturer.yielded))
    assert reporter.events[-2:] == ["flush", "close"]


def test_stop_before_run_reads_nothing(fakes: SimpleNamespace) -> None:
    capturer = fakes.ListCapturer([fakes.sip_batch(2)], forever=True)
    pipeline = fakes.make_pipeline(capturer, [fakes.CountingParser()], [], [])
    runner = Runner(pipeline)
    runner.stop()
    result = runner.run()
    assert result.status == "stopped"
    assert capturer.yielded == 0


def test_a_capture_error_ends_the_run_after_the_good_batches(fakes: SimpleNamespace) -> None:
    error = CaptureError("broken.pcap: truncated packet record at byte 4242")
    capturer = fakes.ListCapturer([fakes.sip_batch(2), fakes.sip_batch(3)], error=error)
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(capturer, [fakes.CountingParser()], [], [reporter])

    result = Runner(pipeline).run()

    assert result.status == "failed"
    assert result.error == "broken.pcap: truncated packet record at byte 4242"
    assert len(reporter.records) == 5
    assert reporter.events == ["start", "flush", "close"]
    assert capturer.released == [0, 1]


def test_a_capturer_that_cannot_open_fails_the_run(fakes: SimpleNamespace) -> None:
    class Unopenable(fakes.ListCapturer):  # type: ignore[name-defined,misc]
        def open(self) -> None:
            raise CaptureError("eth9: no such interface")

    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(Unopenable([]), [], [], [reporter])
    result = Runner(pipeline).run()
    assert (result.status, result.error) == ("failed", "eth9: no such interface")
    assert reporter.events == []  # never started, so never closed


def test_a_reporter_hanging_in_close_cannot_hold_the_end(fakes: SimpleNamespace) -> None:
    release = threading.Event()
    reporter = fakes.CollectingReporter(hang=release)
    pipeline = fakes.make_pipeline(
        fakes.ListCapturer([fakes.sip_batch(1)]), [fakes.CountingParser()], [], [reporter]
    )
    try:
        result = Runner(pipeline, flush_timeout=0.05).run()
    finally:
        release.set()
    assert result.status == "completed"
    assert reporter.events == ["start", "flush", "close"]


def test_stream_parsers_get_reassembled_tcp_data(fakes: SimpleNamespace) -> None:
    frames = [
        fakes.tcp_frame(b"", seq=999, flags=0x02),  # SYN: the stream starts at 1000
        fakes.tcp_frame(b"world", seq=1006),  # out of order: held until the gap fills
        fakes.tcp_frame(b"hello ", seq=1000),
        fakes.tcp_frame(b"", seq=1011, flags=0x11),  # FIN
    ]
    parser = fakes.CountingParser(
        Interest(transports=frozenset({"udp", "tcp"}), ports=frozenset({5060}), tcp_stream=True)
    )
    reporter = fakes.CollectingReporter()
    pipeline = fakes.make_pipeline(
        fakes.ListCapturer([raw_batch(frames)]), [parser], [], [reporter]
    )
    assert pipeline.reassembler is not None

    result = Runner(pipeline).run()

    assert parser.datagrams == 0  # TCP went to the stream path only
    data = b"".join(c.data for c in parser.chunks)
    assert data == b"hello world"
    assert any(c.end for c in parser.chunks)
    c = result.snapshot["counters"]
    assert c["parse.counting.chunks"] == len(parser.chunks)
    assert c["reassembly.tcp.segments"] == 4
