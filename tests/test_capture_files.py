"""``otus run --pcap`` on capture files as operators have them, against what tshark reads.

Each file is made by the test (scapy, the ``otus.testing`` builders); the real pcap capturer,
decoder, SIP parser and console reporter run in a subprocess, as a user runs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otus.testing import need, need_tool
from otus.testing.packets import ethernet_udp_frame, ip_udp_packet, write_pcap


def sip_invite(call: int, padding: int = 0) -> bytes:
    body = "v=0\r\n" + "a=x-pad:" + "p" * padding + "\r\n"
    return (
        f"INVITE sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{call}\r\n"
        f"From: <sip:alice@example.com>;tag={call}\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{call}@example.com\r\nCSeq: 1 INVITE\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


@pytest.fixture(autouse=True)
def _plugins_installed() -> None:
    from otus._plugins.registry import load_registry

    registry = load_registry()
    need("sip" in registry.names("parser"), "otus-parser-sip is not installed")
    need("console" in registry.names("reporter"), "otus-reporter-console is not installed")


def run_sip(path: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str],
                                                                dict[str, Any]]:  # fmt: skip
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "otus.cli.main", "run", "--pcap", str(path), "--parser", "sip",
         "--no-progress", "--summary-json", str(summary), *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return done, data


def tshark_sip_messages(path: Path) -> int:
    """SIP messages tshark decodes in ``path`` (several in one frame count each)."""
    need_tool("tshark")
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "sip.CSeq"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return sum(len([v for v in line.split(",") if v]) for line in out.stdout.splitlines())


def _scapy() -> Any:
    """scapy builds the fragments and segments; missing, the test fails in CI (skips elsewhere)."""
    import importlib.util

    need(importlib.util.find_spec("scapy") is not None, "scapy is not installed")
    import scapy.all

    return scapy.all


def fragmented_frames(call: int, *, keep: slice) -> list[bytes]:
    """An INVITE over UDP cut into 4 IPv4 fragments (scapy), as Ethernet frames; ``keep``
    chooses which of them the capture holds."""
    scapy = _scapy()
    packet = (
        scapy.IP(src="192.0.2.1", dst="192.0.2.2", id=0x4000 + call)
        / scapy.UDP(sport=5060, dport=5060)
        / sip_invite(call, padding=400)
    )
    fragments = scapy.fragment(packet, fragsize=184)
    assert len(fragments) >= 4
    ether = scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return [bytes(ether / f) for f in fragments[keep]]


def test_a_datagram_missing_fragments_at_the_end_is_shown_as_held(tmp_path: Path) -> None:
    path = tmp_path / "incomplete.pcap"
    write_pcap(path, fragmented_frames(1, keep=slice(None)) + fragmented_frames(2, keep=slice(1)))
    done, summary = run_sip(path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert summary["parsed"]["sip"]["records"] == tshark_sip_messages(path) == 1
    assert summary["held"] == {"decode.frag_active": 1}
    assert (
        "held       decode.frag_active: 1 (IP datagrams whose other fragments never came)"
        in done.stderr
    )


def test_raw_ip_files_with_link_type_12_are_read_as_tcpdump_reads_them(tmp_path: Path) -> None:
    # DLT_RAW is 12 on most systems; files written with it say 12 (libpcap maps it to 101).
    path = tmp_path / "raw12.pcap"
    write_pcap(path, [ip_udp_packet(sip_invite(i)) for i in range(3)], linktype=12)
    done, summary = run_sip(path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert summary["errors"] == {}
    assert summary["parsed"]["sip"]["records"] == tshark_sip_messages(path) == 3


def tcp_sip_frames(messages: list[bytes], *, segment: int, drop: int | None = None) -> list[bytes]:
    """One TCP connection (handshake, then ``messages`` cut into ``segment``-byte segments,
    FIN) from 192.0.2.1:40000 to 192.0.2.2:5060, made with scapy; ``drop`` leaves out the
    segment of that index (a loss the capture never saw)."""
    scapy = _scapy()
    ether = scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    out, back = (
        scapy.IP(src="192.0.2.1", dst="192.0.2.2"),
        scapy.IP(src="192.0.2.2", dst="192.0.2.1"),
    )
    isn, peer = 1000, 5000
    frames = [
        ether / out / scapy.TCP(sport=40000, dport=5060, seq=isn, flags="S"),
        ether / back / scapy.TCP(sport=5060, dport=40000, seq=peer - 1, ack=isn + 1, flags="SA"),
        ether / out / scapy.TCP(sport=40000, dport=5060, seq=isn + 1, ack=peer, flags="A"),
    ]
    stream = b"".join(messages)
    for index, offset in enumerate(range(0, len(stream), segment)):
        if index != drop:
            tcp = scapy.TCP(sport=40000, dport=5060, seq=isn + 1 + offset, ack=peer, flags="PA")
            frames.append(ether / out / tcp / stream[offset : offset + segment])
    fin = scapy.TCP(sport=40000, dport=5060, seq=isn + 1 + len(stream), ack=peer, flags="FA")
    frames.append(ether / out / fin)
    return [bytes(f) for f in frames]


def test_tcp_bytes_the_capture_missed_are_shown_as_not_seen(tmp_path: Path) -> None:
    messages = [sip_invite(i, padding=60) for i in range(6)]
    path = tmp_path / "gap.pcap"
    # a segment inside the fourth INVITE never reached the capture
    segment = 97
    inside = (sum(len(m) for m in messages[:3]) + 150) // segment
    write_pcap(path, tcp_sip_frames(messages, segment=segment, drop=inside))
    done, summary = run_sip(path, tmp_path)
    assert done.returncode == 0, done.stderr
    # the other five INVITEs (tshark decodes 3: it does not resynchronise after the gap)
    assert summary["parsed"]["sip"]["records"] == 5
    assert summary["not_seen"] == {"reassembly.tcp.gap_bytes": segment}
    assert (
        f"not seen   reassembly.tcp.gap_bytes: {segment} (TCP bytes missing from the capture; "
        "messages there are lost)"
    ) in done.stderr


def test_frames_without_ip_are_said_to_be_ignored(tmp_path: Path) -> None:
    # An encapsulation the decoder does not know (here 802.1AE MACsec, ethertype 0x88e5)
    # reads as frames without IP: the summary says why nothing was decoded.
    sip = ethernet_udp_frame(sip_invite(1))
    path = tmp_path / "macsec.pcap"
    write_pcap(path, [sip, sip[:12] + b"\x88\xe5" + sip[14:], sip[:12] + b"\x88\xe5" + sip[14:]])
    done, summary = run_sip(path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (summary["decoded"], summary["not_ip"]) == (1, 2)
    assert "decoded    1 packets (2 frames without IP ignored)" in done.stderr


def test_a_run_without_a_parser_says_that_nothing_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "one.pcap"
    write_pcap(path, [ethernet_udp_frame(sip_invite(1))])
    done = subprocess.run(
        [sys.executable, "-m", "otus.cli.main", "run", "--pcap", str(path), "--no-progress"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "otus run: no parser, so nothing is parsed or reported; add --parser NAME "
        "(installed: " in done.stderr
    )
    assert "sip" in done.stderr.split("(installed: ", 1)[1]
