"""The Debian ``prometheus`` server scrapes a daemon running a pcap task until the packet and
record counters equal what the pcap holds (issue: observability)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from otus.testing import need_tool
from otus.testing.daemon import DaemonProcess, free_port
from otus.testing.packets import ethernet_udp_frame, write_pcap

PACKETS = 40
SIP = (
    b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{n}\r\n"
    b"Call-ID: c{n}\r\nFrom: <sip:x@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path, free_port())
    d.start()
    try:
        yield d
    finally:
        d.stop()


def _query(port: int, expr: str) -> float | None:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            data = json.load(resp)
    except OSError:
        return None
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_exact_counts(daemon: DaemonProcess, tmp_path: Path) -> None:
    prometheus = need_tool("prometheus")
    frames = [
        ethernet_udp_frame(SIP.replace(b"{n}", str(i).encode()), sport=5060, dport=5060)
        for i in range(PACKETS)
    ]
    pcap = write_pcap(tmp_path / "calls.pcap", frames)
    task = tmp_path / "task.toml"
    task.write_text(
        f'id = "prom"\n[capture]\nname = "pcap"\n[capture.config]\npath = "{pcap}"\n'
        '[[parsers]]\nname = "sip"\n[[reporters]]\nname = "console"\n'
        f'[reporters.config]\noutput = "{tmp_path / "out.jsonl"}"\n'
    )
    assert daemon.cli("task", "create", "-f", str(task)).returncode == 0

    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: otus\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{daemon.metrics_port}']\n"
    )
    proc = subprocess.Popen(
        [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    try:
        wanted = {
            'otus_capture_packets_total{task="prom"}': PACKETS,
            'sum(otus_pipeline_packets_total{task="prom",stage="decode"})': PACKETS,
            'otus_reporter_records_total{task="prom",reporter="console"}': PACKETS,
            'otus_task_status{task="prom",status="stopped"}': 1,  # the file was read: completed
            "otus_build_info": 1,
        }
        deadline = time.monotonic() + 60
        seen: dict[str, float | None] = {}
        while time.monotonic() < deadline:
            seen = {expr: _query(web, expr) for expr in wanted}
            if all(seen[e] == v for e, v in wanted.items()):
                break
            time.sleep(1)
        assert seen == {e: float(v) for e, v in wanted.items()}, (
            tmp_path / "prometheus.log"
        ).read_text()[-2000:]
        assert _query(web, 'up{job="otus"}') == 1.0
    finally:
        proc.terminate()
        proc.wait(10)
