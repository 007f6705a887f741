"""run_worker: one pipeline in a spawned process, stats over a pipe, clean exit on SIGTERM."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from otus._pipeline.worker import run_worker
from otus.testing.packets import ethernet_udp_frame, write_pcap

SECOND = 1_000_000_000
_MP = multiprocessing.get_context("spawn")


def _task(pcap: Path, out: Path, **capture: Any) -> dict[str, Any]:
    return {
        "id": "wtask",
        "capture": {"name": "pcap", "config": {"path": str(pcap), **capture}},
        "reporters": [{"name": "console", "config": {"format": "json", "output": str(out)}}],
        "parsers": [],
    }


def _process(task: dict[str, Any], pipeline_id: int, conn: Any) -> Any:
    """A worker process exactly as the daemon starts it (the target must be importable by
    the spawned child, so it is ``run_worker`` itself, not a function of this test module)."""
    return _MP.Process(target=run_worker, args=(task, pipeline_id, conn, None, 0.05))


def _messages(conn: Any) -> list[dict[str, Any]]:
    out = []
    while conn.poll(0.1):
        try:
            out.append(conn.recv())
        except EOFError:
            break
    return out


def test_a_worker_runs_its_pipeline_and_ships_the_final_snapshot(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "a.pcap", [ethernet_udp_frame(b"x")] * 50)
    parent, child = _MP.Pipe(duplex=False)
    proc = _process(_task(pcap, tmp_path / "o.jsonl"), 2, child)
    proc.start()
    child.close()
    proc.join(60)
    messages = _messages(parent)
    assert proc.exitcode == 0
    # "started" (the source is open) comes once, before any statistics
    assert messages[0] == {"type": "started"}, messages
    assert [m["type"] for m in messages].count("started") == 1
    stats = [m["stats"] for m in messages if m["type"] == "stats"]
    assert stats, messages
    final = stats[-1]
    assert final["counters"]["capture.packets"] == 50
    assert final["counters"]["decode.decoded"] == 50
    assert not [k for k in final["counters"] if k.startswith("log.")]  # no Loki output
    json.dumps(final)


def test_a_worker_with_a_bad_task_reports_the_error_and_exits_1(tmp_path: Path) -> None:
    task = _task(tmp_path / "a.pcap", tmp_path / "o.jsonl")
    task["parsers"] = [{"name": "nosuch"}]
    parent, child = _MP.Pipe(duplex=False)
    proc = _process(task, 0, child)
    proc.start()
    child.close()
    proc.join(60)
    messages = _messages(parent)
    assert proc.exitcode == 1
    # a configuration no retry can fix: the daemon fails the task instead of restarting it
    assert [m["type"] for m in messages] == ["start_failed"]
    assert messages[-1]["permanent"] is True
    assert "unknown parser 'nosuch'" in messages[-1]["message"]


def test_a_worker_whose_pcap_file_is_missing_fails_to_start_for_good(tmp_path: Path) -> None:
    parent, child = _MP.Pipe(duplex=False)
    proc = _process(_task(tmp_path / "nosuch.pcap", tmp_path / "o.jsonl"), 0, child)
    proc.start()
    child.close()
    proc.join(60)
    failed = [m for m in _messages(parent) if m["type"] in ("start_failed", "started", "error")]
    assert proc.exitcode == 1
    assert failed == [
        {
            "type": "start_failed",
            "message": f"{tmp_path}/nosuch.pcap: cannot open capture file: "
            "No such file or directory",
            "permanent": True,
        }
    ]


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    frames = [ethernet_udp_frame(b"x")] * 60
    pcap = write_pcap(tmp_path / "slow.pcap", frames, step_ns=SECOND // 4)  # 15 s, paced
    parent, child = _MP.Pipe(duplex=False)
    task = _task(pcap, tmp_path / "o.jsonl", speed=1.0)
    proc = _process(task, 0, child)
    proc.start()
    child.close()
    try:
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until packets flow (a periodic snapshot)
            if parent.poll(0.5):
                msg = parent.recv()
                seen.append(msg)
                if msg["type"] == "stats" and msg["stats"]["counters"]["capture.packets"]:
                    break
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGTERM)
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == 0
    final = [m["stats"] for m in seen + _messages(parent) if m["type"] == "stats"][-1]
    assert 0 < final["counters"]["capture.packets"] < 60


@pytest.fixture(autouse=True)
def _console_installed() -> None:
    from otus._plugins.registry import load_registry
    from otus.testing import need

    need("console" in load_registry().names("reporter"), "otus-reporter-console not installed")


def test_a_worker_starved_by_its_memory_cap_says_which_setting(tmp_path: Path) -> None:
    """64 MiB of address space is too little to start a reporter's thread; before, the only
    message was "reporter 'console' failed to start: can't start new thread"."""
    pcap = write_pcap(tmp_path / "m.pcap", [ethernet_udp_frame(b"x")] * 5)
    parent, child = _MP.Pipe(duplex=False)
    settings = {"resources": {"max_memory_per_worker": 64 * 1024 * 1024}}
    proc = _MP.Process(
        target=run_worker, args=(_task(pcap, tmp_path / "o.jsonl"), 0, child, settings, 0.05)
    )
    proc.start()
    child.close()
    proc.join(60)
    failed = [m for m in _messages(parent) if m["type"] == "start_failed"]
    assert proc.exitcode == 1
    assert failed, "the worker reported no error"
    assert "otus.resources.max_memory_per_worker" in failed[-1]["message"]
    assert "64MiB" in failed[-1]["message"]
    assert failed[-1]["permanent"] is False  # memory may be there on the next try


def test_a_worker_ships_its_loki_output_counts(tmp_path: Path) -> None:
    """Before: the Loki output's counts stayed inside each worker; now they travel with its
    statistics (``log.loki.*``) to ``otus stats`` and /metrics (a local receiver as Loki)."""
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    class Loki(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    loki = HTTPServer(("127.0.0.1", 0), Loki)
    Thread(target=loki.serve_forever, daemon=True).start()
    pcap = write_pcap(tmp_path / "a.pcap", [ethernet_udp_frame(b"x")] * 5)
    task = _task(pcap, tmp_path / "o.jsonl")
    settings = {"log": {"loki": {"url": f"http://127.0.0.1:{loki.server_port}"}}}
    try:
        parent, child = _MP.Pipe(duplex=False)
        proc = _MP.Process(target=run_worker, args=(task, 0, child, settings, 0.05))
        proc.start()
        child.close()
        proc.join(60)
        stats = [m["stats"] for m in _messages(parent) if m["type"] == "stats"]
    finally:
        loki.shutdown()
        loki.server_close()
    assert proc.exitcode == 0
    counters, gauges = stats[-1]["counters"], stats[-1]["gauges"]
    assert {k: v for k, v in counters.items() if k.startswith("log.")}.keys() == {
        "log.loki.sent", "log.loki.dropped", "log.loki.errors",
    }  # fmt: skip
    assert "log.loki.buffered" in gauges
