"""Classification in C: ports, payload prefixes, the SIP detector, and what Python then builds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.sctp import SCTP, SCTPChunkData
from scapy.packet import Raw

from otus import Datagram, Interest
from otus._decode.segments import TcpSegment

from .conftest import decode_frames

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
SIP = Interest(
    transports=frozenset({"udp", "tcp"}),
    ports=frozenset({5060, 5061}),
    detector="sip",
    tcp_stream=True,
)
RTP = b"\x80\x00\x00\x01" + b"\x00" * 168


def udp(payload: bytes, sport: int = 40000, dport: int = 40002, vlan: int | None = None) -> bytes:
    l2 = Ether(**MAC) / Dot1Q(vlan=vlan) if vlan is not None else Ether(**MAC)
    return bytes(
        l2 / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=sport, dport=dport) / Raw(payload)
    )


def tcp(payload: bytes, sport: int = 40000, dport: int = 40002, flags: str = "PA") -> bytes:
    return bytes(
        Ether(**MAC)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / TCP(sport=sport, dport=dport, seq=1000, ack=5, flags=flags)
        / Raw(payload)
    )


def detect(payload: bytes) -> bool:
    from otus._native import load

    _, lib = load()
    return bool(lib.otus_detect_sip(payload, len(payload)))


@pytest.mark.parametrize(
    "line",
    [
        b"INVITE sip:bob@example.com SIP/2.0\r\n",
        b"REGISTER sips:example.com SIP/2.0\r\nVia: x\r\n",
        b"OPTIONS sip:10.0.0.1:5080;transport=tcp SIP/2.0\n",
        b"FOO.bar-x! tel:+123 SIP/2.0\r\n",
        b"SIP/2.0 200 OK\r\n",
        b"SIP/2.0 180 Ringing\r\n",
        b"SIP/2.0 603 Decline\r\n",
        b"BYE sip:a@b SIP/2.0",
    ],
)
def test_sip_detector_accepts_start_lines(line: bytes) -> None:
    assert detect(line)


@pytest.mark.parametrize(
    "payload",
    [
        RTP,
        b"GET / HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"SIP/2.0 2000 OK\r\n",
        b"SIP/2.0 OK\r\n",
        b"INVITE  sip:x SIP/2.0\r\n",
        b"INVITE sip:x SIP/2.0x\r\n",
        b"INV(TE sip:x SIP/2.0\r\n",
        b"INVITE sip:x\r\nSIP/2.0\r\n",
        b"",
        b"SIP/2.0 ",
    ],
)
def test_sip_detector_rejects(payload: bytes) -> None:
    assert not detect(payload)


@given(st.binary(max_size=64))
def test_sip_detector_total_on_random_bytes(data: bytes) -> None:
    detect(data)  # any input is safe; the verdict is checked on known lines above


def test_sip_interest_on_voip_mix() -> None:
    frames = [
        udp(RTP),
        udp(b"INVITE sip:bob@x SIP/2.0\r\n\r\n", sport=5060, dport=5060, vlan=12),
        udp(b"SIP/2.0 200 OK\r\n\r\n", sport=6000, dport=7000),  # detector, odd ports
        udp(b"not sip at all", sport=5061, dport=9),  # port match
        tcp(b"SIP/2.0 100 Trying\r\n\r\n", sport=50000, dport=5060),
        tcp(b"", sport=5060, dport=50000, flags="F"),
        tcp(b"garbage", sport=1, dport=2),
    ]
    dec, out = decode_frames(frames, [SIP])
    assert out.indices(0) == [1, 2, 3, 4, 5]
    dgs = out.datagrams(0)
    assert all(isinstance(d, Datagram) for d in dgs)
    assert [bytes(d.payload)[:7] for d in dgs] == [b"INVITE ", b"SIP/2.0", b"not sip"]
    assert (dgs[0].src_ip, dgs[0].dst_ip, dgs[0].src_port, dgs[0].vlan_id) == (
        "10.0.0.1",
        "10.0.0.2",
        5060,
        12,
    )
    segs = out.tcp_segments(0)
    assert all(isinstance(s, TcpSegment) for s in segs)
    assert [(s.payload, s.flags & 1, s.seq, s.src_ip) for s in segs] == [
        (b"SIP/2.0 100 Trying\r\n\r\n", 0, 1000, "2001:db8::1"),
        (b"", 1, 1000, "2001:db8::1"),
    ]
    s = dec.stats()
    assert (s["classified"], s["unclassified"]) == (5, 2)
    assert [out.row(i)["cls"] for i in range(7)] == [-1, 0, 0, 0, 0, 0, -1]


def test_tcp_segments_become_datagrams_without_tcp_stream() -> None:
    interest = Interest(transports=frozenset({"tcp"}), ports=frozenset({5060}))
    _, out = decode_frames([tcp(b"abc", dport=5060)], [interest])
    assert [bytes(d.payload) for d in out.datagrams(0)] == [b"abc"]
    assert out.tcp_segments(0) == []


def test_prefixes_transports_and_several_interests() -> None:
    any_udp = Interest()
    rtp_prefix = Interest(
        transports=frozenset({"udp", "sctp"}), prefixes=(b"\x80\x00", b"\x80\x08")
    )
    sctp_only = Interest(transports=frozenset({"sctp"}))
    sctp = bytes(
        Ether(**MAC)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / SCTP(sport=1, dport=2)
        / SCTPChunkData(data=b"\x80\x08rest")
    )
    frames = [udp(RTP), udp(b"\x80\x01"), sctp, tcp(b"\x80\x00")]
    _, out = decode_frames(frames, [any_udp, rtp_prefix, sctp_only])
    assert out.indices(0) == [0, 1]
    assert out.indices(1) == [0, 2]
    assert out.indices(2) == [2]
    assert [bytes(d.payload) for d in out.datagrams(2)] == [b"\x80\x08rest"]
    assert out.row(2)["match"] == 0b110


def test_no_wanted_packets_builds_nothing() -> None:
    _, out = decode_frames([udp(RTP)] * 50, [SIP])
    assert out.wanted(0) == 0
    assert out.datagrams(0) == []
    assert out.tcp_segments(0) == []
    assert out.count == 50
