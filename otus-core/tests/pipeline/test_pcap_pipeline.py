"""The real pcap capturer, decoder and SIP parser in one pipeline (in process)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

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
