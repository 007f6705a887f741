"""``otus run`` as a user runs it: a subprocess on a pcap file the test writes.

Uses the real pcap capturer, decoder, SIP parser and console reporter (all installed in the
development environment; the SIP parser and console reporter are separate distributions, so
their absence fails in CI and skips elsewhere).
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otus.testing import need
from otus.testing.packets import ethernet_udp_frame, write_pcap

SECOND = 1_000_000_000


def sip_message(i: int) -> bytes:
    return (
        f"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{i}\r\n"
        f"From: <sip:alice@example.com>;tag={i}\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{i}@example.com\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def mixed_frames(n_sip: int, n_rtp: int) -> list[bytes]:
    frames = [ethernet_udp_frame(sip_message(i)) for i in range(n_sip)]
    frames += [ethernet_udp_frame(b"\x80" + bytes(171), dport=20000) for _ in range(n_rtp)]
    return frames


def otus(*args: str) -> list[str]:
    return [sys.executable, "-m", "otus.cli.main", *args]


@pytest.fixture(autouse=True)
def _plugins_installed() -> None:
    from otus._plugins.registry import load_registry

    registry = load_registry()
    need("sip" in registry.names("parser"), "otus-parser-sip is not installed")
    need("console" in registry.names("reporter"), "otus-reporter-console is not installed")


def run_otus(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(otus(*args), check=False, capture_output=True, text=True, timeout=timeout)


def test_run_on_a_pcap_reports_every_sip_message_and_summarises(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "calls.pcap", mixed_frames(25, 200))
    summary = tmp_path / "summary.json"

    proc = run_otus(
        "run", "--pcap", str(pcap), "--parser", "sip", "--reporter", "console",
        "--set", "console.format=json", "--summary-json", str(summary),
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(r["labels"]["sip.call_id"] for r in records) == sorted(
        f"call-{i}@example.com" for i in range(25)
    )
    assert {r["task_id"] for r in records} == {"run"}
    assert "read       225 packets" in proc.stderr
    assert "parsed     sip: 25 records from 25 datagrams" in proc.stderr
    assert "reported   console: 25 records" in proc.stderr
    data = json.loads(summary.read_text())
    assert data["status"] == "completed"
    assert data["read"]["packets"] == 225
    assert data["decoded"] == 225
    assert data["parsed"]["sip"]["records"] == 25
    assert data["reported"] == {"console": 25}
    assert data["dropped"] == {}
    assert data["errors"] == {}


def test_a_task_file_runs_the_same_way(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "calls.pcap", mixed_frames(3, 5))
    out = tmp_path / "records.jsonl"
    task = tmp_path / "task.toml"
    task.write_text(
        f'id = "from-file"\nlabels = {{ site = "lab" }}\n'
        f'[capture]\nname = "pcap"\nconfig = {{ path = "{pcap}" }}\n'
        f'[[parsers]]\nname = "sip"\n'
        f'[[reporters]]\nname = "console"\nconfig = {{ format = "json", output = "{out}" }}\n'
    )
    proc = run_otus("run", "-f", str(task))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3
    assert all(r["task_id"] == "from-file" and r["labels"]["site"] == "lab" for r in records)


def test_an_invalid_run_is_refused_before_anything_starts(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "calls.pcap", mixed_frames(1, 0))
    proc = run_otus("run", "--pcap", str(pcap), "--parser", "nosuch")
    assert proc.returncode == 1
    assert "parsers[0].name" in proc.stderr
    assert "unknown parser 'nosuch'" in proc.stderr
    proc = run_otus("run", "--pcap", str(pcap), "--set", "console.colour=yes")
    assert proc.returncode == 1
    assert "reporters[0].config.colour" in proc.stderr
    assert proc.stdout == ""


def test_an_unwritable_summary_file_is_refused_before_the_run(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "calls.pcap", mixed_frames(2, 0))
    summary = tmp_path / "no-such-dir" / "summary.json"
    proc = run_otus("run", "--pcap", str(pcap), "--parser", "sip", "--summary-json", str(summary))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"otus: --summary-json {summary}: cannot write: No such file or directory"
    ]
    assert proc.stdout == ""  # refused before anything was read


def test_a_broken_pcap_is_processed_up_to_the_damage_then_one_error_line(
    tmp_path: Path,
) -> None:
    pcap = write_pcap(tmp_path / "broken.pcap", mixed_frames(10, 0))
    whole = pcap.read_bytes()
    pcap.write_bytes(whole[: len(whole) - 40])  # the last record is cut short

    proc = run_otus("run", "--pcap", str(pcap), "--parser", "sip", "--set", "console.format=json")

    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 9  # everything before the damage
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("otus: broken.pcap")
    assert "Traceback" not in proc.stderr
    assert "otus run: failed" in proc.stderr


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = run_otus("run", "--pcap", str(tmp_path / "missing.pcap"), "--parser", "sip")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"otus: {tmp_path / 'missing.pcap'}: cannot open capture file: No such file or directory"
    ]


def test_sigint_during_a_paced_run_stops_cleanly_with_a_summary(tmp_path: Path) -> None:
    # 30 SIP messages one second of capture time apart, replayed in real time
    frames = [ethernet_udp_frame(sip_message(i)) for i in range(30)]
    pcap = write_pcap(tmp_path / "slow.pcap", frames, step_ns=SECOND)
    proc = subprocess.Popen(
        otus("run", "--pcap", str(pcap), "--speed", "1", "--parser", "sip",
             "--set", "console.format=json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the run is under way once a record came out
        assert json.loads(first)["payload_type"] == "sip"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "otus run: interrupted" in err
    assert "Traceback" not in err
    reported = 1 + len(out.splitlines())
    assert reported < 30
    assert f"reported   console: {reported} records" in err


def test_a_progress_bar_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "calls.pcap", mixed_frames(5, 50), step_ns=SECOND // 10)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        otus("run", "--pcap", str(pcap), "--speed", "5", "--parser", "sip",
             "--set", "console.output=/dev/null"),
        stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "%" in text
    assert "pkts" in text
    assert "[" in text
    assert "otus run: completed" in text  # then the summary


def test_records_a_reporter_could_not_deliver_make_the_run_exit_1(tmp_path: Path) -> None:
    # before: writing every record into a full device ended "completed", exit 0
    pcap = write_pcap(tmp_path / "calls.pcap", mixed_frames(5, 10))
    summary = tmp_path / "summary.json"
    proc = run_otus(
        "run", "--pcap", str(pcap), "--parser", "sip", "--set", "console.output=/dev/full",
        "--summary-json", str(summary),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "otus: records not delivered (console 5)" in proc.stderr
    assert "not sent   console: 5 of 5 records" in proc.stderr
    data = json.loads(summary.read_text())
    assert data["status"] == "completed"
    assert data["undelivered"] == {"console": 5}
    # the same run into a writable file delivers everything: exit 0, nothing undelivered
    out = tmp_path / "records.jsonl"
    proc = run_otus(
        "run", "--pcap", str(pcap), "--parser", "sip", "--set", f"console.output={out}",
        "--summary-json", str(summary),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 5
    assert json.loads(summary.read_text())["undelivered"] == {}
