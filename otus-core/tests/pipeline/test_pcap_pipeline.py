"""The real pcap capturer, decoder and SIP parser in one pipeline (in process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from otus import Record, Reporter
from otus._config.task import TaskConfig
from otus._config.validate import ValidatedTask
from otus._pipeline.builder import build_pipeline
from otus._pipeline.runner import Runner
from otus._plugins.registry import load_registry
from otus.context import PluginContext
from otus.specs import ParserSpec, ReporterSpec
from otus.testing.packets import ethernet_udp_frame, write_pcap


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _sip(i: int) -> bytes:
    return (
        f"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9{i}\r\n"
        f"From: <sip:a@example.com>;tag={i}\r\nTo: <sip:b@example.com>\r\n"
        f"Call-ID: c{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
def pcap_task(fakes: SimpleNamespace) -> Any:
    """The real pcap capturer and decoder; an in-test parser (one record per SIP datagram, the
    SIP parser is another distribution and is tested through this path in tests/)."""
    registry = load_registry()

    def make(path: Path, reporter: Any, **capture: Any) -> ValidatedTask:
        cap = registry.get("capturer", "pcap")
        sip = ParserSpec("sip", lambda o, c: fakes.CountingParser(), NoOptions, "-")
        return ValidatedTask(
            config=TaskConfig.model_validate(
                {"id": "p", "capture": {"name": "pcap"}, "reporters": [{"name": "collect"}]}
            ),
            capture=(cap, cap.options_model.model_validate({"path": str(path), **capture})),
            parsers=[(sip, sip.options_model.model_validate({}))],
            reporters=[
                (ReporterSpec("collect", lambda o, c: reporter, NoOptions, "-"), NoOptions())
            ],
        )

    return make


def test_small_batches_of_a_pcap_file_all_reach_the_reporter(
    tmp_path: Path, fakes: SimpleNamespace, pcap_task: Any
) -> None:
    frames = []
    for i in range(40):
        frames.append(ethernet_udp_frame(_sip(i)))
        frames += [ethernet_udp_frame(b"\x80" + bytes(100), dport=30000)] * 9
    path = write_pcap(tmp_path / "mix.pcap", frames)
    reporter = fakes.CollectingReporter()
    # 16 packets per batch: 25 batches, SIP messages spread over many of them
    task = pcap_task(path, reporter, batch_packets=16)
    pipeline = build_pipeline(task, PluginContext(task_id="p", agent_id="n1"))

    result = Runner(pipeline).run()

    assert result.status == "completed"
    call_ids = [r.raw_payload.split(b"Call-ID: ")[1].split(b"\r")[0] for r in reporter.records]
    assert call_ids == [f"c{i}".encode() for i in range(40)]
    c = result.snapshot["counters"]
    assert c["capture.batches"] == 25
    assert c["capture.packets"] == 400
    assert c["decode.decoded"] == 400
    assert c["parse.sip.in"] == 40
    assert c["records.reported"] == 40


def test_a_truncated_file_delivers_what_precedes_the_damage(
    tmp_path: Path, fakes: SimpleNamespace, pcap_task: Any
) -> None:
    path = write_pcap(tmp_path / "cut.pcap", [ethernet_udp_frame(_sip(i)) for i in range(20)])
    path.write_bytes(path.read_bytes()[:-30])
    reporter = fakes.CollectingReporter()
    pipeline = build_pipeline(pcap_task(path, reporter, batch_packets=4), PluginContext())

    result = Runner(pipeline).run()

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("cut.pcap: truncated record")
    assert len(reporter.records) == 19
    assert reporter.events == ["start", "flush", "close"]


class Bounded(Reporter):
    """A reporter with a buffer of ``room`` records that a slow writer drains (a destination
    slower than a file is read). An in-test reporter: the point is a buffer that fills on
    demand, with a ``wait_for_room`` as the console and Kafka reporters have."""

    def __init__(self, room: int, delay: float) -> None:
        self.room, self.delay = room, delay
        self.held: list[Record] = []
        self.written: list[Record] = []
        self.dropped = 0
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _drain(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.held or self.stopping)
                if not self.held:
                    return
                record = self.held.pop(0)
            time.sleep(self.delay)
            with self.cond:
                self.written.append(record)
                self.cond.notify_all()

    def report(self, records: Sequence[Record]) -> None:
        with self.cond:
            fit = max(0, self.room - len(self.held))
            self.held += records[:fit]
            self.dropped += len(records) - min(fit, len(records))
            self.cond.notify_all()

    def wait_for_room(self, records: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.held) + records <= self.room or
                                      not self.held, timeout)  # fmt: skip

    def flush(self, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: not self.held, timeout)

    def close(self, timeout: float) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join(timeout)

    def stats(self) -> dict[str, int]:
        return {"records": len(self.written), "dropped.buffer_full": self.dropped}


def _sip_file(tmp_path: Path, n: int) -> Path:
    return write_pcap(tmp_path / "sip.pcap", [ethernet_udp_frame(_sip(i)) for i in range(n)])


def test_a_file_waits_for_a_slow_reporter_instead_of_dropping(
    tmp_path: Path, pcap_task: Any
) -> None:
    reporter = Bounded(room=10, delay=0.002)
    task = pcap_task(_sip_file(tmp_path, 200), reporter, batch_packets=8)
    pipeline = build_pipeline(task, PluginContext())
    assert pipeline.pausable
    result = Runner(pipeline, flush_timeout=1.0).run()
    assert result.status == "completed"
    assert reporter.dropped == 0
    assert len(reporter.written) == 200
    drops = {k: v for k, v in result.snapshot["counters"].items() if ".dropped." in k and v}
    assert drops == {}


def test_a_paced_replay_stands_for_live_traffic_and_drops(tmp_path: Path, pcap_task: Any) -> None:
    reporter = Bounded(room=10, delay=0.002)
    task = pcap_task(_sip_file(tmp_path, 200), reporter, batch_packets=8, speed=1000.0)
    pipeline = build_pipeline(task, PluginContext())
    assert not pipeline.pausable
    result = Runner(pipeline, flush_timeout=1.0).run()
    assert result.status == "completed"
    assert reporter.dropped > 0
    assert len(reporter.written) + reporter.dropped == 200


def test_stop_releases_a_run_held_by_a_stuck_reporter(tmp_path: Path, pcap_task: Any) -> None:
    reporter = Bounded(room=8, delay=3600.0)  # takes a record and never finishes it
    task = pcap_task(_sip_file(tmp_path, 2000), reporter, batch_packets=4)
    pipeline = build_pipeline(task, PluginContext())
    runner = Runner(pipeline, flush_timeout=0.5)
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(runner.run()), daemon=True)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # held: the file waits
    assert reporter.dropped == 0
    runner.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert out[0].status == "stopped"
