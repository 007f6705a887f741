"""A daemon task's start as an operator sees it: ``otus task create`` answers how it went.

A worker that can never start (no such pcap file, no such interface) fails its task at once
with the worker's own error and exit code 1, without restarts; a good task answers running;
a worker that cannot start for a passing reason (an interface that is down) is retried, and
the task runs once the reason is gone; one killed after it started is restarted as before.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otus._control.client import RpcCallError, call
from otus._control.jsonrpc import INVALID_PARAMS, TASK_FAILED
from otus.testing import need, need_root
from otus.testing.daemon import DaemonProcess, free_port
from otus.testing.netns import inside, ip, raw_sender, veth_pair
from otus.testing.packets import ethernet_udp_frame, write_pcap

MISSING_IFACE = f"otusnosuch{os.getpid()}"[:15]


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonProcess]:
    # short restart delays so the retry tests need seconds, not half a minute
    monkeypatch.setenv("OTUS_RESOURCES_RESTART_BACKOFF", "0.2s")
    d = DaemonProcess(tmp_path, free_port())
    d.start()
    try:
        yield d
    finally:
        d.stop()


def _afpacket_installed() -> None:
    from otus._plugins.registry import load_registry

    need("afpacket" in load_registry().names("capturer"), "otus-capture-afpacket not installed")


def pcap_task(root: Path, task_id: str, pcap: Path, **capture: Any) -> Path:
    config = {
        "id": task_id,
        "capture": {"name": "pcap", "config": {"path": str(pcap), **capture}},
        "reporters": [{"name": "console", "config": {"output": str(root / f"{task_id}.out")}}],
    }
    path = root / f"{task_id}.json"
    path.write_text(json.dumps(config))
    return path


def live_task(root: Path, task_id: str, interface: str) -> Path:
    config = {
        "id": task_id,
        "capture": {"name": "afpacket", "config": {"interface": interface}},
        "reporters": [
            {
                "name": "console",
                "config": {"output": str(root / f"{task_id}.out"), "format": "json"},
            }
        ],
    }
    path = root / f"{task_id}.json"
    path.write_text(json.dumps(config))
    return path


def status(d: DaemonProcess, task_id: str) -> dict[str, Any]:
    result: dict[str, Any] = d.json("task", "status", task_id)
    return result


def assert_failed_at_once(d: DaemonProcess, path: Path, task_id: str, error: str) -> None:
    """``create`` exits 1 with ``error``; the task is failed with it, never restarted."""
    out = d.cli("task", "create", "-f", str(path))
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert f"otus: task {task_id} failed to start: worker 0: {error}" in out.stderr
    st = status(d, task_id)
    assert st["state"] == "failed"
    assert st["reason"].startswith(f"worker 0: {error}")
    assert (st["restarts"], st["workers_alive"], st["workers_started"]) == (0, 0, 0)
    stats = d.json("stats")
    assert (stats["worker_restarts_total"], stats["task_states"][task_id]) == (0, "failed")
    # /metrics shows the same state (the families are fed by the task list)
    with socket.create_connection(("127.0.0.1", d.metrics_port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    assert f'otus_task_status{{status="failed",task="{task_id}"}} 1.0' in body


def test_a_missing_pcap_file_fails_the_task_at_once(daemon: DaemonProcess, tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.pcap"
    path = pcap_task(tmp_path, "nofile", missing)
    assert_failed_at_once(
        daemon, path, "nofile", f"{missing}: cannot open capture file: No such file or directory"
    )
    # a directory where the file should be: the same, with its own reason
    path = pcap_task(tmp_path, "adir", tmp_path)
    assert_failed_at_once(daemon, path, "adir", f"{tmp_path}: cannot open capture file: Is a dir")


def test_a_missing_interface_fails_the_task_at_once(daemon: DaemonProcess, tmp_path: Path) -> None:
    _afpacket_installed()
    need_root()
    path = live_task(tmp_path, "noiface", MISSING_IFACE)
    assert_failed_at_once(daemon, path, "noiface", f"interface {MISSING_IFACE!r} does not exist")


def test_a_missing_kafka_tls_file_fails_the_task_at_once(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """A reporter that refuses to start for good (here the Kafka reporter's CA file is
    missing: a PluginError) fails the task like a missing capture file does."""
    from otus._plugins.registry import load_registry

    need("kafka" in load_registry().names("reporter"), "otus-reporter-kafka not installed")
    pcap = write_pcap(tmp_path / "k.pcap", [ethernet_udp_frame(b"x")] * 3)
    ca = tmp_path / "nosuch-ca.pem"
    config = {
        "id": "tls",
        "capture": {"name": "pcap", "config": {"path": str(pcap)}},
        "reporters": [
            {
                "name": "kafka",
                "config": {"brokers": ["127.0.0.1:1"], "topic": "t", "tls": {"ca_file": str(ca)}},
            }
        ],
    }
    path = tmp_path / "tls.json"
    path.write_text(json.dumps(config))
    assert_failed_at_once(
        daemon,
        path,
        "tls",
        f"reporter 'kafka' failed to start: kafka reporter: cannot load the"
        f" TLS files (ca_file {ca}): No such file or directory",
    )


def test_a_good_pcap_task_answers_started(daemon: DaemonProcess, tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "ok.pcap", [ethernet_udp_frame(b"x")] * 5, step_ns=10**9)
    out = daemon.cli("task", "create", "-f", str(pcap_task(tmp_path, "ok", pcap, speed=1.0)))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert (answer["state"], answer["workers_started"], answer["restarts"]) == ("running", 1, 0)
    # a short file may be read to its end before the answer: it completed, which is fine too
    pcap = write_pcap(tmp_path / "short.pcap", [ethernet_udp_frame(b"x")] * 3)
    out = daemon.cli("task", "create", "-f", str(pcap_task(tmp_path, "short", pcap)))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["state"] in ("running", "stopped")


def test_a_good_live_task_answers_running_and_captures(tmp_path: Path) -> None:
    _afpacket_installed()
    need_root()
    with veth_pair() as pair:
        d = DaemonProcess(tmp_path, free_port())
        with inside(pair.ns_a):  # the daemon (and so its workers) lives in the capture namespace
            d.start()
        try:
            out = d.cli("task", "create", "-f", str(live_task(tmp_path, "live", pair.if_a)))
            assert out.returncode == 0, out.stderr
            answer = json.loads(out.stdout)
            assert (answer["state"], answer["workers_started"]) == ("running", 1)
            sender = raw_sender(pair.ns_b, pair.if_b)
            try:
                frame = ethernet_udp_frame(b"hello", src_mac=pair.mac_b, dst_mac=pair.mac_a)

                def captured() -> int:
                    sender.send(frame)
                    counts = status(d, "live").get("counts", {}).get("counters", {})
                    return int(counts.get("capture.packets", 0))

                d.wait_for(captured, what="packets captured")
            finally:
                sender.close()
            assert status(d, "live")["state"] == "running"
        finally:
            d.stop()


def test_an_interface_that_is_down_is_retried_until_it_comes_up(tmp_path: Path) -> None:
    """A passing reason (the interface is down) is not permanent: create says the task is still
    starting (exit 1, the last error), the worker is retried, and the task runs once it is up."""
    _afpacket_installed()
    need_root()
    with veth_pair() as pair:
        ip("link", "set", pair.if_a, "down", netns=pair.ns_a)
        d = DaemonProcess(tmp_path, free_port())
        with inside(pair.ns_a):
            d.start()
        try:
            path = live_task(tmp_path, "down", pair.if_a)
            out = d.cli("task", "create", "-f", str(path), "--wait", "1")
            assert out.returncode == 1
            assert "task down: 0 of 1 worker(s) started within 1s" in out.stderr
            assert f"interface {pair.if_a!r} is down" in out.stderr
            assert json.loads(out.stdout)["state"] == "starting"
            ip("link", "set", pair.if_a, "up", netns=pair.ns_a)
            st = d.wait_for(
                lambda: (s := status(d, "down"))["state"] != "starting" and s, what="running"
            )
            assert st["state"] == "running", st
            assert st["restarts"] >= 1
        finally:
            d.stop()


def test_a_worker_killed_after_start_is_restarted(daemon: DaemonProcess, tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "loop.pcap", [ethernet_udp_frame(b"x")] * 5, step_ns=10**8)
    out = daemon.cli("task", "create", "-f", str(pcap_task(tmp_path, "k", pcap, loop=-1, speed=1)))
    assert out.returncode == 0, out.stderr
    pid = json.loads(out.stdout)["worker_pids"][0]
    os.kill(pid, signal.SIGKILL)
    st = daemon.wait_for(
        lambda: (s := status(daemon, "k"))["restarts"] == 1 and s["workers_started"] == 1 and s,
        what="the restarted worker to start",
    )
    assert st["state"] == "running"
    assert st["worker_pids"] != [pid]
    assert "SIGKILL" in st["last_error"]
    assert daemon.json("stats")["worker_restarts_total"] == 1


def test_the_json_rpc_answers(daemon: DaemonProcess, tmp_path: Path) -> None:
    """The shapes docs/cli.md documents: an error with the task's summary as ``data`` when it
    failed to start; ``starting`` at once with ``wait`` 0; a bad ``wait`` refused."""
    missing = {
        "id": "rpc1",
        "capture": {"name": "pcap", "config": {"path": str(tmp_path / "none.pcap")}},
        "reporters": [{"name": "console"}],
    }
    with pytest.raises(RpcCallError) as failed:
        call(daemon.socket, "task_create", {"config": missing})
    assert failed.value.code == TASK_FAILED
    assert str(failed.value).startswith("task rpc1 failed to start: worker 0: ")
    assert failed.value.data["state"] == "failed"
    assert failed.value.data["reason"] == str(failed.value).split("failed to start: ", 1)[1]

    pcap = write_pcap(tmp_path / "w.pcap", [ethernet_udp_frame(b"x")] * 5, step_ns=10**9)
    config = {**missing, "id": "rpc2", "capture": {"name": "pcap", "config": {"path": str(pcap)}}}
    config["capture"]["config"]["speed"] = 1.0
    result = call(daemon.socket, "task_create", {"config": config, "wait": 0})
    assert (result["state"], result["workers_started"]) == ("starting", 0)
    daemon.wait_for(lambda: status(daemon, "rpc2")["state"] == "running", what="running")

    for bad in (-1, 1000, "soon", True):
        with pytest.raises(RpcCallError) as refused:
            call(daemon.socket, "task_create", {"config": {**config, "id": "rpc3"}, "wait": bad})
        assert refused.value.code == INVALID_PARAMS
        assert "'wait' must be a number of seconds from 0 to 120" in str(refused.value)


def test_a_restored_task_whose_file_went_away_fails_at_once(tmp_path: Path) -> None:
    """A task restored at the daemon's start goes through the same start: a permanent failure
    fails it (logged), without restarts and without holding up the daemon."""
    pcap = write_pcap(tmp_path / "gone.pcap", [ethernet_udp_frame(b"x")] * 5, step_ns=10**8)
    d = DaemonProcess(tmp_path, free_port())
    d.start()
    try:
        path = pcap_task(tmp_path, "gone", pcap, loop=-1, speed=1.0)
        assert d.cli("task", "create", "-f", str(path)).returncode == 0
        assert d.stop() == 0
        pcap.unlink()
        d.start()
        st = d.wait_for(
            lambda: (s := status(d, "gone"))["state"] not in ("starting", "running") and s,
            what="the restored task to fail",
        )
        assert st["state"] == "failed"
        assert (
            st["reason"] == f"worker 0: {pcap}: cannot open capture file: No such file or directory"
        )
        assert st["restarts"] == 0
        log = d.log.read_text()
        assert "task gone failed (worker 0:" in log
    finally:
        d.stop()
