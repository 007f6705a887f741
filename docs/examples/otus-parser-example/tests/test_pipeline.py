"""End to end: ``otus run`` reads a pcap file through the installed syslog parser."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from otus.testing import ethernet_udp_frame, need, write_pcap

MESSAGES = [
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - An event",
    b"<34>Oct 11 22:14:15 mymachine su[231]: 'su root' failed for lonvick on /dev/pts/8",
    b"not syslog at all",
]


def test_otus_run_parses_a_capture(tmp_path: Path) -> None:
    names = {e.name for e in entry_points(group="otus.plugins")}
    need("console" in names, "otus-reporter-console is not installed (it writes the records)")
    frames = [ethernet_udp_frame(m, src="192.0.2.10", dst="192.0.2.1", dport=514) for m in MESSAGES]
    pcap = write_pcap(tmp_path / "syslog.pcap", frames)
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "otus.cli", "run", "--pcap", str(pcap), "--parser", "syslog",
         "--set", "console.format=json", "--no-progress", "--summary-json", str(summary)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["labels"]["syslog.severity"] for r in records] == ["notice", "crit"]
    assert records[1]["labels"]["syslog.app"] == "su"
    assert all(r["payload_type"] == "syslog" and r["dst_port"] == 514 for r in records)
    assert "syslog" in summary.read_text()
