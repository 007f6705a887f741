"""The Kafka reporter against a real broker (tansu): wire format, routing, compression,
oversize handling, a fallback, and a broker that dies and comes back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from kafka_helpers import accounted, consume, make_reporter, seqs, sip_record

from otus import PluginContext, record_to_dict
from otus.testing.kafka import TansuBroker, TansuProxy
from otus_reporter_kafka.options import KafkaReporterOptions
from otus_reporter_kafka.plugin import SPEC


@pytest.mark.parametrize("routed", [False, True], ids=["python-messages", "c-sections"])
def test_wire_format_is_the_go_otus_one(tansu_broker: TansuBroker, routed: bool) -> None:
    """The Python encoding (messages) and the C one writing straight into the partitions'
    sections (once the sender knows them): the same on the wire."""
    topic = f"otus-records-{routed}"
    tansu_broker.create_topic(topic, partitions=3)
    reporter = make_reporter(tansu_broker.bootstrap, native=routed, topic=topic)
    written: list[int] = []
    if routed:
        deadline = time.monotonic() + 10
        while topic not in reporter._buffer.routes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [s.partition for s in reporter._buffer.routes[topic]] == [0, 1, 2]
        encode = reporter._bodies.encode_sections

        def spy(*args: Any) -> tuple[int, int, int, int, int]:
            result = encode(*args)
            written.append(result[2])  # records written into sections
            return result

        reporter._bodies.encode_sections = spy  # type: ignore[method-assign]
    records = [sip_record(i) for i in range(40)]
    reporter.report(records)
    assert sum(written) == (40 if routed else 0)  # the Python path writes no section
    assert reporter._sectioned is routed
    assert reporter.flush(15)
    reporter.close(5)
    got = consume(tansu_broker.bootstrap, topic, 40)
    assert sorted(seqs(got)) == list(range(40))
    by_seq = {int(m.header("l.test.seq")): m for m in got}
    for record in records:
        msg = by_seq[int(record.labels["test.seq"])]
        assert (
            msg.key
            == f"{record.src_ip}:{record.src_port}-{record.dst_ip}:{record.dst_port}".encode()
        )
        assert msg.headers == (
            ("task_id", b"task-1"),
            ("agent_id", b"node-a"),
            ("payload_type", b"sip"),
            ("src_ip", record.src_ip.encode()),
            ("dst_ip", b"10.0.0.2"),
            ("src_port", str(record.src_port).encode()),
            ("dst_port", b"5060"),
            ("timestamp", str(record.ts_ns // 1_000_000).encode()),
            ("l.sip.method", b"INVITE"),
            ("l.sip.call_id", record.labels["sip.call_id"].encode()),
            ("l.test.seq", record.labels["test.seq"].encode()),
        )
        assert msg.value is not None
        assert json.loads(msg.value) == record_to_dict(record)
        assert msg.timestamp == record.ts_ns // 1_000_000
        # murmur2 placement, as the Java client (and Go's franz-go, librdkafka) place keys
        assert msg.partition == (murmur2(msg.key) & 0x7FFFFFFF) % 3
    stats = reporter.stats()
    assert stats["records"] == 40
    assert stats["reported"] == 40
    assert stats["buffer_records"] == 0
    assert stats["batches"] >= 3  # one per partition at least


def test_topic_prefix_routes_by_payload_type(tansu_broker: TansuBroker) -> None:
    reporter = make_reporter(tansu_broker.bootstrap, topic_prefix="otus")
    reporter.report([sip_record(i, payload_type="sip" if i % 3 else "rtp") for i in range(30)])
    assert reporter.flush(15)
    reporter.close(5)
    sip = consume(tansu_broker.bootstrap, "otus-sip", 20)
    rtp = consume(tansu_broker.bootstrap, "otus-rtp", 10)
    assert sorted(seqs(sip)) == [i for i in range(30) if i % 3]
    assert sorted(seqs(rtp)) == [i for i in range(30) if not i % 3]
    assert {m.header("payload_type") for m in rtp} == {b"rtp"}


@pytest.mark.parametrize(
    ("codec", "level"),
    [("none", None), ("gzip", None), ("gzip", 1), ("snappy", None), ("lz4", None),
     ("lz4", -8), ("lz4", 9), ("zstd", None), ("zstd", -3)],
)  # fmt: skip
def test_every_compression(tansu_broker: TansuBroker, codec: str, level: int | None) -> None:
    topic = f"c-{codec}-{level}"
    reporter = make_reporter(
        tansu_broker.bootstrap, topic=topic, compression=codec, compression_level=level
    )
    records = [sip_record(i) for i in range(300)]
    reporter.report(records)
    assert reporter.flush(15)
    reporter.close(5)
    got = consume(tansu_broker.bootstrap, topic, 300)
    assert sorted(seqs(got)) == list(range(300))
    assert all(
        json.loads(m.value or b"") == record_to_dict(records[s])
        for m, s in zip(got, seqs(got), strict=True)
    )


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_compressed_batches_stretch_and_split_to_stay_within_batch_size(
    tansu_broker: TansuBroker, codec: str
) -> None:
    """Records that compress well: batches hold more than ``batch_size`` before compression,
    so fewer batches go out. Then records that barely compress: a batch that comes out
    over ``batch_size`` is split in two (counted), and every record arrives once."""
    import random

    topic = f"stretch-{codec}"
    line = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\n"
    easy = [sip_record(i, raw=line * 20) for i in range(1500)]
    plain = make_reporter(tansu_broker.bootstrap, topic=f"{topic}-plain", batch_size="32KiB")
    plain.report(easy)
    assert plain.flush(15)
    plain.close(5)
    reporter = make_reporter(
        tansu_broker.bootstrap, topic=topic, compression=codec, batch_size="32KiB"
    )
    reporter.report(easy)
    assert reporter.flush(15)
    stats = reporter.stats()
    assert stats["batches"] < plain.stats()["batches"] * 0.75
    assert stats["batches_split"] == 0
    rng = random.Random(5)
    hard = [sip_record(1500 + i, raw=rng.randbytes(3000)) for i in range(300)]
    reporter.report(hard)
    assert reporter.flush(15)
    reporter.close(5)
    stats = reporter.stats()
    assert stats["batches_split"] >= 1
    assert stats["records"] == 1800
    assert sorted(seqs(consume(tansu_broker.bootstrap, topic, 1800))) == list(range(1800))


@pytest.mark.parametrize("linger", [0.0, 1.0])
def test_linger_lets_a_batch_fill(tansu_broker: TansuBroker, linger: float) -> None:
    """Records reported a moment apart go out in one batch when the sender lingers for more
    (the oldest queued record waits up to ``linger``), in two when it does not."""
    topic = f"linger-{linger}"
    tansu_broker.create_topic(topic, partitions=1)
    reporter = make_reporter(tansu_broker.bootstrap, topic=topic, linger=linger)
    try:
        reporter.report([sip_record(100)])  # connected, metadata known: the sender is ready
        assert reporter.flush(15)
        before = reporter.stats()["batches"]
        reporter.report([sip_record(i) for i in range(10)])
        time.sleep(0.2)
        reporter.report([sip_record(i) for i in range(10, 20)])
        assert reporter.flush(15)
        assert reporter.stats()["batches"] - before == (1 if linger else 2)
    finally:
        reporter.close(5)
    got = seqs(consume(tansu_broker.bootstrap, topic, 21))
    assert sorted(got) == [*range(20), 100]


def test_oversize_records_are_dropped_and_counted(tansu_broker: TansuBroker) -> None:
    reporter = make_reporter(tansu_broker.bootstrap, topic="big", max_message_bytes=4096)
    reporter.report([sip_record(0), sip_record(1, raw=b"x" * 5000), sip_record(2)])
    assert reporter.flush(15)
    reporter.close(5)
    assert sorted(seqs(consume(tansu_broker.bootstrap, "big", 2))) == [0, 2]
    stats = reporter.stats()
    assert stats["dropped.oversize"] == 1
    assert stats["records"] == 2
    assert accounted(stats) == 3


def test_oversize_records_are_truncated_on_request(tansu_broker: TansuBroker) -> None:
    reporter = make_reporter(
        tansu_broker.bootstrap, topic="cut", max_message_bytes=4096, oversize="truncate"
    )
    raw = bytes(range(256)) * 20  # 5120 bytes, base64 would be 6828
    reporter.report([sip_record(7, raw=raw)])
    assert reporter.flush(15)
    reporter.close(5)
    (msg,) = consume(tansu_broker.bootstrap, "cut", 1)
    value = json.loads(msg.value or b"")
    import base64

    kept = base64.b64decode(value["raw_payload"])
    assert 0 < len(kept) < len(raw)
    assert raw.startswith(kept)
    assert value["raw_payload_len"] == len(raw)  # the original length, so consumers can tell
    assert len(msg.value or b"") <= 4096
    assert reporter.stats()["truncated"] == 1


def test_broker_unreachable_mid_run_then_back(tansu_broker: TansuBroker) -> None:
    """Broker gone ~3 s: records wait in the bounded buffer, overflow is counted exactly,
    report() keeps returning, and delivery resumes by itself when the broker is back.

    The outage kills the ``tansu proxy`` the reporter talks to, not the broker: this tansu
    build keeps data in memory only and, restarted, accepts writes to topics it no longer
    knows before they are re-created, so a restarted broker cannot be counted against."""
    tansu_broker.create_topic("outage", partitions=3)
    proxy = TansuProxy(tansu_broker).start()
    reporter = make_reporter(proxy.bootstrap, topic="outage", buffer_records=2000)
    try:
        for start in range(0, 3000, 1000):
            reporter.report([sip_record(i) for i in range(start, start + 1000)])
            assert reporter.flush(15)
        assert reporter.stats()["records"] == 3000

        proxy.kill()
        killed_at = time.monotonic()
        for start in range(3000, 8000, 500):  # 5000 records while the broker is away
            reporter.report([sip_record(i) for i in range(start, start + 500)])
            time.sleep(0.2)
        stats = reporter.stats()
        assert stats["dropped.buffer_full"] == 3000  # 2000 held, the rest refused
        assert stats["buffer_records"] == 2000
        assert stats["records"] == 3000
        time.sleep(max(0.0, 3.0 - (time.monotonic() - killed_at)))
        proxy.restart()

        assert reporter.flush(20)
        reporter.report([sip_record(i) for i in range(8000, 8100)])  # and it keeps going
        assert reporter.flush(15)
    finally:
        reporter.close(5)
        proxy.kill()
    got = seqs(consume(tansu_broker.bootstrap, "outage", 5100))
    # tail drop: the first 2000 of the outage were kept; every record exactly once
    assert len(got) == len(set(got))
    assert sorted(got) == [*range(5000), *range(8000, 8100)]
    stats = reporter.stats()
    assert stats["records"] == 5100
    assert stats["reported"] == 8100
    assert stats["records"] + stats["dropped.buffer_full"] + stats["buffer_records"] == 8100
    assert accounted(stats) == 8100


def test_wait_for_room_holds_a_file_source_until_the_broker_takes_records(
    tansu_broker: TansuBroker,
) -> None:
    """What the run loop asks before each batch when the source can wait (a file): room in
    the buffer, waiting while the broker is away instead of dropping."""
    tansu_broker.create_topic("room", partitions=1)
    proxy = TansuProxy(tansu_broker).start()
    reporter = make_reporter(proxy.bootstrap, topic="room", buffer_records=1000)
    try:
        reporter.report([sip_record(i) for i in range(100)])
        assert reporter.flush(15)
        assert reporter.wait_for_room(1000, 0.0)  # nothing held
        proxy.kill()
        reporter.report([sip_record(i) for i in range(100, 1000)])  # 900 held
        assert not reporter.wait_for_room(200, 0.5)  # 900 + 200 > 1000 while it is away
        assert reporter.wait_for_room(100, 0.0)
        proxy.restart()
        assert reporter.wait_for_room(1000, 20)  # delivered: room again
        assert reporter.stats()["dropped.buffer_full"] == 0
    finally:
        reporter.close(5)
        proxy.kill()
    assert sorted(seqs(consume(tansu_broker.bootstrap, "room", 1000))) == list(range(1000))


def test_broker_down_at_start_then_up() -> None:
    """No broker at all when the reporter starts: it keeps trying and delivers later."""
    broker = TansuBroker()
    reporter = make_reporter(broker.bootstrap, topic="late", retry_backoff=0.1)
    try:
        reporter.report([sip_record(i) for i in range(100)])
        time.sleep(0.5)
        assert reporter.stats()["buffer_records"] == 100
        assert reporter.stats()["records"] == 0
        broker.start()
        assert reporter.flush(15)
        assert sorted(seqs(consume(broker.bootstrap, "late", 100))) == list(range(100))
    finally:
        reporter.close(5)
        broker.close()


def test_fallback_receives_only_what_kafka_could_not_deliver(
    tansu_broker: TansuBroker, tmp_path: Path
) -> None:
    """The fallback is the console reporter writing JSON lines to a file, built through the
    plugin registry as a task file would name it."""
    out = tmp_path / "fallback.jsonl"
    options = KafkaReporterOptions.model_validate(
        {
            "brokers": [tansu_broker.bootstrap],
            "topic": "fb",
            "request_timeout": 1.0,
            "retries": 1,
            "retry_backoff": 0.2,
            "fallback": {"name": "console", "config": {"format": "json", "output": str(out)}},
        }
    )
    reporter = SPEC.factory(options, PluginContext())
    reporter.start()
    reporter.report([sip_record(i) for i in range(50)])
    assert reporter.flush(15)
    tansu_broker.kill()
    reporter.report([sip_record(i) for i in range(50, 80)])
    assert reporter.flush(15)  # given up after 1 retry of 1 s each
    reporter.close(5)
    stats = reporter.stats()
    assert stats["records"] == 50
    assert stats["fallback"] == 30
    assert stats["retries"] >= 1
    assert stats["dropped.delivery_failed"] == 0
    assert accounted(stats) == stats["reported"] == 80
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(int(line["labels"]["test.seq"]) for line in lines) == list(range(50, 80))


def test_encoding_errors_are_counted_not_raised(tansu_broker: TansuBroker) -> None:
    reporter = make_reporter(tansu_broker.bootstrap, topic="enc")
    bad = sip_record(1)
    bad.payload = {"not json": object()}
    reporter.report([sip_record(0), bad, sip_record(2)])
    assert reporter.flush(15)
    reporter.close(5)
    assert sorted(seqs(consume(tansu_broker.bootstrap, "enc", 2))) == [0, 2]
    assert reporter.stats()["dropped.encode_error"] == 1
    assert accounted(reporter.stats()) == 3


def test_close_without_a_broker_counts_what_was_left() -> None:
    """Nothing listens: close() gives up after its bound and counts every held record."""
    broker = TansuBroker()  # never started: its port stays closed
    reporter = make_reporter(broker.bootstrap, topic="never", retry_backoff=0.1)
    try:
        reporter.report([sip_record(i) for i in range(100)])
        reporter.close(1.0)
        reporter.report([sip_record(i) for i in range(10)])  # after close: counted, not queued
        stats = reporter.stats()
        assert stats["records"] == 0
        assert stats["dropped.shutdown"] == 110
        assert stats["buffer_records"] == 0
        assert accounted(stats) == stats["reported"] == 110
    finally:
        broker.close()


def test_close_after_the_broker_went_away_counts_every_held_record(
    tansu_broker: TansuBroker,
) -> None:
    """The broker vanishes mid-run, then the run ends: whatever close() could not deliver
    within its time is counted as dropped.shutdown by the time close() returns, also when the
    sender is still stuck on the lost connection (before, it was counted only when the
    sender thread ended, after the run's final summary: 'dropped none')."""
    tansu_broker.create_topic("gone", partitions=1)
    proxy = TansuProxy(tansu_broker).start()
    reporter = make_reporter(proxy.bootstrap, topic="gone", request_timeout=30.0)
    try:
        reporter.report([sip_record(i) for i in range(50)])
        assert reporter.flush(15)
        proxy.kill()
        for start in range(50, 150, 25):
            reporter.report([sip_record(i) for i in range(start, start + 25)])
            time.sleep(0.2)
        reporter.close(2.0)
        stats = reporter.stats()
        assert stats["records"] == 50
        assert stats["buffer_records"] == 0
        assert stats["dropped.shutdown"] == 100
        assert accounted(stats) == stats["reported"] == 150
    finally:
        proxy.kill()


def test_broker_process_killed_and_restarted(tansu_broker: TansuBroker) -> None:
    """A real broker crash (SIGKILL) and restart on the same port: the reporter reconnects by
    itself; what it held during the outage (the first 500 reported then; the rest dropped, the
    buffer being full) and what is reported afterwards arrive. What the broker had before the
    crash is gone: the restarted tansu starts empty (memory storage).

    ``linger=0``: tansu's memory storage loses writes when ``restart()`` re-creates the topic
    after the reporter's first writes reached it (its later writes at offset 0 fail with
    AlreadyExists; the retried batches are acknowledged but not all readable). With the
    default 5 ms linger that interleaving happened in about 1 run of 3 here, with none in 16
    runs; the reporter reconnects, retries and counts alike either way."""
    tansu_broker.create_topic("crash", partitions=2)
    reporter = make_reporter(tansu_broker.bootstrap, topic="crash", buffer_records=500, linger=0)
    try:
        reporter.report([sip_record(i) for i in range(200)])
        assert reporter.flush(15)
        tansu_broker.kill()
        for start in range(200, 1200, 250):
            reporter.report([sip_record(i) for i in range(start, start + 250)])
            time.sleep(0.5)
        stats = reporter.stats()
        assert stats["dropped.buffer_full"] == 500
        assert stats["buffer_records"] == 500
        tansu_broker.restart()  # same port, topic re-created empty
        assert reporter.flush(20)
        reporter.report([sip_record(i) for i in range(5000, 5300)])
        assert reporter.flush(15)
    finally:
        reporter.close(5)
    got = seqs(consume(tansu_broker.bootstrap, "crash", 800))
    assert sorted(got) == [*range(200, 700), *range(5000, 5300)]
    stats = reporter.stats()
    assert stats["records"] == 200 + 500 + 300
    assert accounted(stats) == stats["reported"] == 1500
