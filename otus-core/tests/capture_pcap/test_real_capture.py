"""A real capture: tcpdump on loopback records traffic the test sends; tshark converts it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import dpkt

from otus.testing import need_root, need_tool

from .pcapfiles import read_ok

COUNT = 40


def capture_loopback(path: Path, *, nano: bool) -> list[bytes]:
    """Record COUNT UDP datagrams sent to 127.0.0.1 with tcpdump; return the payloads sent."""
    tcpdump = need_tool("tcpdump")
    need_root()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    cmd = [tcpdump, "-i", "lo", "-n", "-U", "-c", str(COUNT), "-w", str(path)]
    if nano:
        cmd += ["--time-stamp-precision", "nano"]
    proc = subprocess.Popen(
        [*cmd, "udp", "and", "dst", "port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    payloads = [b"otus pcap test %d " % i + bytes(i * 13) for i in range(COUNT)]
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "listening on lo, ..." once the capture runs
        assert b"listening on" in line, line
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for p in payloads:
            tx.sendto(p, ("127.0.0.1", port))
        tx.close()
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rx.close()
    return payloads


def dpkt_read(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        return [(float(ts), bytes(buf)) for ts, buf in dpkt.pcap.UniversalReader(f)]


def test_tcpdump_capture_and_tshark_pcapng_conversion(tmp_path: Path) -> None:
    for nano in (False, True):
        pcap = tmp_path / f"lo-{nano}.pcap"
        sent = capture_loopback(pcap, nano=nano)
        got = read_ok(str(pcap))
        assert len(got) == COUNT
        assert all(p.linktype == 1 for p in got)  # Linux loopback is DLT_EN10MB
        assert [p.data[42:] for p in got] == sent  # 14 Ethernet + 20 IPv4 + 8 UDP
        ref = dpkt_read(pcap)
        assert [p.data for p in got] == [b for _, b in ref]
        assert all(abs(p.ts_ns - ts * 1e9) < 1000 for p, (ts, _) in zip(got, ref, strict=True))

        tshark = need_tool("tshark")
        ng = tmp_path / f"lo-{nano}.pcapng"
        subprocess.run(
            [tshark, "-r", str(pcap), "-F", "pcapng", "-w", str(ng)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert ng.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
        converted = read_ok(str(ng))
        assert [p.key() for p in converted] == [p.key() for p in got]
