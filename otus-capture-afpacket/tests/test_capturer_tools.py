"""Traffic from real tools: a pcap replayed by tcpreplay and a sipp call between namespaces,
checked against what was sent (tcpreplay) and against tcpdump on the same interface (sipp)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import dpkt
import pytest
from afp_helpers import collect, count_at_least, udp_frame

from otus.testing import need_tool
from otus.testing.netns import VethPair, inside
from otus_capture_afpacket._capturer import AfPacketCapturer
from otus_capture_afpacket.options import AfPacketOptions

pytestmark = pytest.mark.root


def open_capturer(veth: VethPair, bpf: str = "") -> AfPacketCapturer:
    opts = AfPacketOptions(
        interface=veth.if_a,
        bpf=bpf,
        block_size=262144,
        block_count=8,
        snaplen=65535,
        block_timeout_ms=5,
    )
    cap = AfPacketCapturer(opts)
    with inside(veth.ns_a):
        cap.open()
    return cap


def test_tcpreplay_of_a_pcap_arrives_byte_for_byte(veth: VethPair, tmp_path: Path) -> None:
    tcpreplay = need_tool("tcpreplay")
    frames = [
        udp_frame(
            veth.ip_b,
            veth.ip_a,
            30000 + i,
            5060,
            bytes([i % 251]) * (i * 7 % 1400),
            src_mac=veth.mac_b,
        )
        for i in range(200)
    ]
    pcap = tmp_path / "replay.pcap"
    with pcap.open("wb") as f:
        writer = dpkt.pcap.Writer(f)
        for i, frame in enumerate(frames):
            writer.writepkt(frame, ts=1_700_000_000 + i / 1000)
    cap = open_capturer(veth)
    try:
        veth.run_b(tcpreplay, "--topspeed", "-i", veth.if_b, str(pcap))
        got = collect(cap, count_at_least(len(frames)))
    finally:
        cap.close()
    assert [p.frame for p in got] == frames


def test_sipp_call_matches_tcpdump(veth: VethPair, tmp_path: Path) -> None:
    sipp, tcpdump = need_tool("sipp"), need_tool("tcpdump")
    pcap = tmp_path / "tcpdump.pcap"
    dump = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            veth.ns_a,
            tcpdump,
            "-i",
            veth.if_a,
            "-U",
            "-w",
            str(pcap),
            "udp port 5060",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    uas = None
    cap = open_capturer(veth, bpf="udp port 5060")
    try:
        assert dump.stderr is not None
        assert "listening on" in dump.stderr.readline()
        uas = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                veth.ns_a,
                sipp,
                "-sn",
                "uas",
                "-i",
                veth.ip_a,
                "-p",
                "5060",
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "10s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        collected: list[object] = []
        reader = threading.Thread(
            target=lambda: collected.extend(collect(cap, lambda _: False, 8.0))
        )
        reader.start()
        veth.run_b(
            sipp,
            "-sn",
            "uac",
            f"{veth.ip_a}:5060",
            "-i",
            veth.ip_b,
            "-p",
            "5061",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "10s",
            "-timeout_error",
            timeout=20,
        )
        assert uas.wait(timeout=15) == 0
        dump.terminate()
        dump.wait(timeout=5)
        cap.stop()
        reader.join()
    finally:
        cap.close()
        for proc in (dump, uas):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    with pcap.open("rb") as f:
        reference = [bytes(frame) for _, frame in dpkt.pcap.Reader(f)]
    ours = [p.frame for p in collected]  # type: ignore[attr-defined]
    methods = [f[42:].split(b" ", 1)[0] for f in ours]
    assert ours == reference
    for expected in (b"INVITE", b"ACK", b"BYE"):
        assert expected in methods
    assert sum(m == b"SIP/2.0" for m in methods) >= 3  # 180, 200 to INVITE, 200 to BYE
