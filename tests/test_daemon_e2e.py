"""The daemon as users meet it: started as a process, driven only through the CLI/socket."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otus.testing.daemon import OTUS, free_port
from otus.testing.daemon import DaemonProcess as Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A real daemon process on a temporary socket and data dir."""
    d = Daemon(tmp_path, free_port())
    d.start()
    try:
        yield d
    finally:
        d.stop()


SIP = (
    b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
    b"Call-ID: c1\r\nFrom: <sip:x@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def write_pcap(path: Path, count: int) -> None:
    import struct

    from otus.testing.packets import ethernet_udp_frame

    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(count):
            frame = ethernet_udp_frame(SIP, sport=5060, dport=5060)
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
            f.write(frame)


def task_file(root: Path, task_id: str, pcap: Path, *, loop: int = 0, speed: float = 0) -> Path:
    out = root / f"{task_id}.out"
    text = (
        f'id = "{task_id}"\n[capture]\nname = "pcap"\n[capture.config]\npath = "{pcap}"\n'
        f"loop = {loop}\n" + (f"speed = {speed}\n" if speed else "") +
        '[[parsers]]\nname = "sip"\n[[reporters]]\nname = "console"\n'
        f'[reporters.config]\noutput = "{out}"\nformat = "json"\n'
    )  # fmt: skip
    path = root / f"{task_id}.toml"
    path.write_text(text)
    return path


def counters(d: Daemon, task_id: str) -> dict[str, Any]:
    st = d.json("task", "status", task_id)
    return dict(st.get("counts", {}).get("counters", {}))


def test_tasks_create_list_status_delete(daemon: Daemon, tmp_path: Path) -> None:
    pcap = tmp_path / "calls.pcap"
    write_pcap(pcap, 20)
    for path in (task_file(tmp_path, "a", pcap), task_file(tmp_path, "b", pcap, loop=-1, speed=1)):
        out = daemon.cli("task", "create", "-f", str(path))
        assert out.returncode == 0, out.stderr
    tasks = {t["id"]: t for t in daemon.json("task", "list")}
    assert set(tasks) == {"a", "b"}
    daemon.wait_for(lambda: counters(daemon, "a").get("records.reported") == 20, what="20 records")
    # A pcap task completes when its file is read: stopped with reason "completed", not restarted.
    done = daemon.wait_for(
        lambda: (s := daemon.json("task", "status", "a"))["state"] == "stopped" and s,
        what="completion",
    )
    assert done["reason"] == "completed"
    assert done["restarts"] == 0
    assert done["counts"]["counters"]["records.reported"] == 20
    assert len((tmp_path / "a.out").read_text().splitlines()) == 20
    dup = daemon.cli("task", "create", "-f", str(task_file(tmp_path, "b", pcap)))
    assert dup.returncode == 1
    assert "duplicate task id 'b'" in dup.stderr
    stats = daemon.json("stats")
    assert stats["tasks"]["a"]["counters"]["capture.packets"] == 20
    assert daemon.cli("task", "delete", "a").returncode == 0
    assert [t["id"] for t in daemon.json("task", "list")] == ["b"]
    missing = daemon.cli("task", "delete", "nope")
    assert missing.returncode == 1
    assert "no task 'nope'" in missing.stderr
    # The journal tells when each task ran and why it ended, under its task field.
    assert daemon.cli("task", "delete", "b").returncode == 0
    lines = [json.loads(line) for line in daemon.log.read_text().splitlines()]
    events = [
        (e["task"], e["event"]) for e in lines if e.get("logger") == "otus.daemon" and "task" in e
    ]
    assert [e for e in events if e[0] == "a"] == [
        ("a", "task a running"),
        ("a", "task a stopped (completed)"),
    ]
    assert [e for e in events if e[0] == "b"] == [
        ("b", "task b running"),
        ("b", "task b stopped (deleted)"),
    ]


def test_a_relative_pcap_path_is_the_one_next_to_the_user(daemon: Daemon, tmp_path: Path) -> None:
    """`otus task create -f` run in another directory than the daemon's: a relative capture
    path names the file the user sees, not one in the daemon's working directory."""
    client = tmp_path / "client"
    client.mkdir()
    write_pcap(client / "calls.pcap", 3)
    (client / "rel.toml").write_text(
        'id = "rel"\n[capture]\nname = "pcap"\nconfig = { path = "calls.pcap" }\n'
        f'[[reporters]]\nname = "console"\nconfig = {{ output = "{tmp_path / "rel.out"}" }}\n'
    )
    assert Path.cwd() != client
    cmd = [*OTUS, "task", "create", "-f", "rel.toml", "--socket", daemon.socket]
    created = subprocess.run(cmd, capture_output=True, text=True, cwd=client, timeout=60)
    assert created.returncode == 0, created.stderr
    done = daemon.wait_for(
        lambda: (s := daemon.json("task", "status", "rel"))["state"] in ("stopped", "failed") and s,
        what="the task to end",
    )
    assert (done["state"], done["reason"], done["restarts"]) == ("stopped", "completed", 0)
    assert done["counts"]["counters"]["capture.packets"] == 3
    # stdin is the daemon's, not the user's: refused instead of a task reading nothing
    (client / "stdin.toml").write_text(
        'id = "stdin"\n[capture]\nname = "pcap"\nconfig = { path = "-" }\n'
        '[[reporters]]\nname = "console"\n'
    )
    cmd = [*OTUS, "task", "create", "-f", "stdin.toml", "--socket", daemon.socket]
    refused = subprocess.run(cmd, capture_output=True, text=True, cwd=client, timeout=60)
    assert refused.returncode == 1
    assert "stdin.toml: capture.config.path: '-' (stdin)" in refused.stderr
    assert [t["id"] for t in daemon.json("task", "list")] == ["rel"]


def test_killed_worker_is_restarted_and_counters_stay_monotonic(
    daemon: Daemon, tmp_path: Path
) -> None:
    pcap = tmp_path / "loop.pcap"
    write_pcap(pcap, 50)
    path = task_file(tmp_path, "loop", pcap, loop=-1, speed=1.0)
    assert daemon.cli("task", "create", "-f", str(path)).returncode == 0
    before = daemon.wait_for(lambda: counters(daemon, "loop").get("capture.packets"), what="counts")
    pid = daemon.json("task", "status", "loop")["worker_pids"][0]
    os.kill(pid, signal.SIGKILL)
    st = daemon.wait_for(lambda: (s := daemon.json("task", "status", "loop"))["restarts"] >= 1
                         and s["workers_alive"] == 1 and s, what="restart")  # fmt: skip
    assert st["state"] == "running"
    assert "SIGKILL" in (st["last_error"] or "")
    after = daemon.wait_for(
        lambda: (n := counters(daemon, "loop").get("capture.packets", 0)) > before and n,
        what="counts after restart",
    )
    assert after > before
    # The daemon's own line about it carries the fields troubleshooting.md filters logs by.
    died = [
        line
        for line in map(json.loads, daemon.log.read_text().splitlines())
        if "worker 0 died" in line.get("event", "")
    ]
    assert died, daemon.log.read_text()
    assert (died[0]["task"], died[0]["worker"]) == ("loop", 0)


def test_restart_restores_running_tasks(daemon: Daemon, tmp_path: Path) -> None:
    pcap = tmp_path / "r.pcap"
    write_pcap(pcap, 5)
    path = task_file(tmp_path, "keep", pcap, loop=-1, speed=1.0)
    assert daemon.cli("task", "create", "-f", str(path)).returncode == 0
    assert daemon.stop() == 0
    assert not os.path.exists(daemon.socket)
    daemon.start()
    # Restored tasks start like new ones (starting until the worker opened its source), without
    # holding up the daemon's start.
    tasks = daemon.json("task", "list")
    assert [(t["id"], t["state"]) for t in tasks] in ([("keep", "starting")], [("keep", "running")])
    daemon.wait_for(
        lambda: daemon.json("task", "status", "keep")["state"] == "running", what="running"
    )


def test_kill_9_leaves_nothing_that_blocks_the_next_start(daemon: Daemon, tmp_path: Path) -> None:
    pcap = tmp_path / "k.pcap"
    write_pcap(pcap, 5)
    path = task_file(tmp_path, "k", pcap, loop=-1, speed=1.0)
    assert daemon.cli("task", "create", "-f", str(path)).returncode == 0
    daemon.stop(signal.SIGKILL)
    assert os.path.exists(daemon.socket)  # stale socket and pid file are left behind
    daemon.start()
    assert [t["id"] for t in daemon.json("task", "list")] == ["k"]


@pytest.mark.parametrize("how", ["otus stop", "SIGTERM"])
def test_a_stop_with_clients_connected_logs_no_traceback(daemon: Daemon, how: str) -> None:
    """Connections still open when the daemon stops (the `otus stop` client itself, an idle
    one) end with it; Python 3.11's asyncio logged each as 'Exception in callback ...
    CancelledError' with a traceback at error level."""
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(daemon.socket)
    try:
        assert daemon.cli("status").returncode == 0  # the idle client is being served by now
        if how == "otus stop":
            assert daemon.cli("stop").returncode == 0
            assert daemon.proc is not None
            assert daemon.proc.wait(30) == 0
        else:
            assert daemon.stop() == 0
        assert idle.recv(1) == b""  # closed by the daemon
    finally:
        idle.close()
    log = daemon.log.read_text()
    assert "otus daemon stopped" in log
    assert "Traceback" not in log
    assert "Exception in callback" not in log


def test_damaged_task_files_are_logged_and_do_not_stop_the_start(tmp_path: Path) -> None:
    tasks = tmp_path / "data" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "torn.json").write_text('{"config": {"id": "torn"')
    (tasks / "odd.json").write_text('{"config": {"id": "odd"}, "state": "bogus"}')
    d = Daemon(tmp_path, free_port())
    d.start()  # before, the bad state stopped the daemon with a ValueError traceback
    try:
        assert d.json("task", "list") == []
    finally:
        d.stop()
    log = d.log.read_text()
    for name in ("torn", "odd"):
        assert f"task file {tasks / name}.json is damaged" in log
        assert (tasks / f"{name}.corrupt").exists()
    assert "Traceback" not in log


def test_second_daemon_on_the_same_socket_is_refused(daemon: Daemon) -> None:
    out = subprocess.run(
        [*daemon_cmd(), "--socket", daemon.socket, "--data-dir", daemon.data_dir],
        capture_output=True, text=True, env=daemon.env(), timeout=30,
    )  # fmt: skip
    assert out.returncode == 1
    assert "already running" in out.stderr or "already listening" in out.stderr


def daemon_cmd() -> list[str]:
    return [*OTUS, "daemon"]


def test_socket_mode_and_bad_clients(daemon: Daemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600

    def raw(payload: bytes) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(daemon.socket)
            # The daemon may answer and hang up before reading all of an oversized request.
            with contextlib.suppress(BrokenPipeError):
                s.sendall(payload)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return dict(json.loads(data))

    assert raw(b"{oops\n")["error"]["code"] == -32700
    assert raw(b'{"jsonrpc":"2.0","method":"nope","id":1}\n')["error"]["code"] == -32601
    assert (
        raw(b'{"jsonrpc":"2.0","method":"task_delete","params":{},"id":1}\n')["error"]["code"]
        == -32602
    )
    bad_task = {"jsonrpc": "2.0", "method": "task_create", "id": 2,
                "params": {"config": {"id": "x", "capture": {"name": "nope"},
                                       "reporters": [{"name": "console"}]}}}  # fmt: skip
    err = raw(json.dumps(bad_task).encode() + b"\n")["error"]
    assert err["code"] == -32001
    assert "unknown capturer 'nope'" in err["message"]
    assert raw(b"x" * (2 << 20) + b"\n")["error"]["code"] == -32600  # oversized request
    # 1,000 idle clients at once neither crash nor block the daemon.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    idle = []
    for _ in range(1000):
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.socket)
        idle.append(s)
    try:
        assert daemon.cli("status").returncode == 0
    finally:
        for s in idle:
            s.close()


def test_peer_check_refuses_other_users() -> None:
    """SO_PEERCRED: a user who is neither root nor the daemon's user nor in its group is refused,
    even when the socket's file mode would let it connect."""
    import sys
    import tempfile

    from otus.testing import need_root

    need_root()
    root = Path(tempfile.mkdtemp(prefix="otus-peer-"))
    os.chmod(root, 0o755)  # 'nobody' must reach the socket file; the daemon's check decides
    d = Daemon(root, free_port())
    d.start()
    try:
        os.chmod(d.socket, 0o666)
        code = (
            "import socket,os;os.setgid(65534);os.setuid(65534);"
            f"s=socket.socket(socket.AF_UNIX);s.connect({d.socket!r});"
            "print(s.recv(4096).decode())"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=20)  # fmt: skip
        assert "permission denied for uid 65534" in out.stdout, out.stderr
    finally:
        d.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_no_daemon_gives_a_clear_message(tmp_path: Path) -> None:
    out = subprocess.run([*OTUS, "task", "list", "--socket", str(tmp_path / "none.sock")],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 1
    assert "no daemon is running" in out.stderr


def test_reload_reports_live_and_restart_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "otus.toml"
    cfg.write_text('[otus.log]\nlevel = "info"\n')
    d = Daemon(tmp_path, free_port())
    d_cmd = [*OTUS, "--config", str(cfg), "daemon", "--socket", d.socket, "--data-dir", d.data_dir]
    with d.log.open("ab") as log:
        d.proc = subprocess.Popen(d_cmd, stdout=log, stderr=log, env=d.env())
    try:
        d.wait_for(lambda: os.path.exists(d.socket) and d.cli("status").returncode == 0,
                   what="daemon")  # fmt: skip
        cfg.write_text('[otus.log]\nlevel = "debug"\n[otus.control]\nmax_connections = 10\n')
        res = d.json("reload")
        assert "log.level" in res["applied"]
        assert "control.max_connections" in res["restart_required"]
        d.proc.send_signal(signal.SIGHUP)  # the same through SIGHUP: the daemon stays up
        time.sleep(0.5)
        assert d.cli("status").returncode == 0
    finally:
        d.stop()


def test_task_expiry(daemon: Daemon, tmp_path: Path) -> None:
    pcap = tmp_path / "e.pcap"
    write_pcap(pcap, 5)
    path = task_file(tmp_path, "exp", pcap, loop=-1, speed=1.0)
    path.write_text('duration = "2s"\n' + path.read_text())
    assert daemon.cli("task", "create", "-f", str(path)).returncode == 0
    st = daemon.wait_for(
        lambda: (s := daemon.json("task", "status", "exp"))["state"] == "stopped" and s,
        what="expiry",
    )
    assert st["reason"] == "expired"


def test_a_toml_datetime_expiry_reaches_the_daemon(daemon: Daemon, tmp_path: Path) -> None:
    """`expires_at = 2030-01-01T00:00:00Z` is a TOML datetime, not a string: it must still
    travel to the daemon (JSON) and come back as the task's expiry."""
    pcap = tmp_path / "t.pcap"
    write_pcap(pcap, 5)
    path = task_file(tmp_path, "dated", pcap, loop=-1, speed=1.0)
    path.write_text("expires_at = 2030-01-01T00:00:00Z\n" + path.read_text())
    created = daemon.cli("task", "create", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert daemon.json("task", "status", "dated")["expires_at"].startswith("2030-01-01T00:00:00")


def test_an_expiry_in_the_past_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    """Before: accepted ("running"), then stopped as expired at the next supervision pass."""
    pcap = tmp_path / "p.pcap"
    write_pcap(pcap, 5)
    path = task_file(tmp_path, "past", pcap, loop=-1, speed=1.0)
    path.write_text("expires_at = 2020-01-01T00:00:00Z\n" + path.read_text())
    refused = daemon.cli("task", "create", "-f", str(path))
    assert refused.returncode == 1
    assert "expires_at 2020-01-01T00:00:00+00:00 has passed" in refused.stderr
    assert all(t["id"] != "past" for t in daemon.json("task", "list"))


def test_resource_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """otus.resources: tasks at once, workers per task, and each worker's address space."""
    monkeypatch.setenv("OTUS_RESOURCES_MAX_TASKS", "1")
    monkeypatch.setenv("OTUS_RESOURCES_MAX_WORKERS_PER_TASK", "2")
    monkeypatch.setenv("OTUS_RESOURCES_MAX_MEMORY_PER_WORKER", "8GiB")
    d = Daemon(tmp_path, free_port())
    d.start()
    try:
        pcap = tmp_path / "r.pcap"
        write_pcap(pcap, 5)
        wide = tmp_path / "wide.toml"  # refused before any worker starts (a pcap task has one)
        wide.write_text(
            'id = "wide"\nworkers = 3\n[capture]\nname = "afpacket"\n'
            'config = { interface = "lo" }\n[[reporters]]\nname = "console"\n'
        )
        out = d.cli("task", "create", "-f", str(wide))
        assert out.returncode == 1
        assert "max_workers_per_task" in out.stderr
        first = task_file(tmp_path, "first", pcap, loop=-1, speed=1.0)
        assert d.cli("task", "create", "-f", str(first)).returncode == 0
        second = task_file(tmp_path, "second", pcap, loop=-1, speed=1.0)
        out = d.cli("task", "create", "-f", str(second))
        assert out.returncode == 1
        assert "max_tasks" in out.stderr
        pid = d.wait_for(lambda: d.json("task", "status", "first")["worker_pids"], what="worker")[0]
        limits = Path(f"/proc/{pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max address space"))
        assert row.split()[3] == str(8 * 1024**3)
        assert d.cli("task", "delete", "first").returncode == 0
        assert d.cli("task", "create", "-f", str(second)).returncode == 0
    finally:
        d.stop()
