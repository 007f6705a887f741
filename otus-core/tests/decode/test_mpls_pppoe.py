"""Carrier and access encapsulations found in operators' captures: MPLS label stacks (IP, or an
Ethernet pseudowire with its control word) and PPPoE sessions carry IP the decoder reaches."""

from __future__ import annotations

import struct

import pytest

from otus import Interest
from otus.testing.packets import ethernet_udp_frame, ip_udp_packet

from .conftest import decode_frames

SIP = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\r\n"
WANT = [Interest(ports=frozenset({5060}))]
MACS = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"


def mpls(*labels: int, bottom: bool = True) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        s = 1 if bottom and i == len(labels) - 1 else 0
        out += struct.pack(">I", (label << 12) | (s << 8) | 64)
    return out


def frame(ethertype: int, inner: bytes) -> bytes:
    return MACS + struct.pack(">H", ethertype) + inner


V4 = ip_udp_packet(SIP, src="192.0.2.1", dst="192.0.2.2", sport=5060, dport=5060)
V6 = ip_udp_packet(SIP, src="2001:db8::1", dst="2001:db8::2", sport=5060, dport=5060)


@pytest.mark.parametrize(
    ("name", "data", "src"),
    [
        ("mpls ipv4", frame(0x8847, mpls(100) + V4), "192.0.2.1"),
        ("mpls stack ipv6", frame(0x8847, mpls(100, 200, 300) + V6), "2001:db8::1"),
        ("mpls multicast", frame(0x8848, mpls(16) + V4), "192.0.2.1"),
        ("vlan mpls", MACS + struct.pack(">HHH", 0x8100, 10, 0x8847) + mpls(5) + V4, "192.0.2.1"),
        (
            "mpls ethernet pseudowire",
            frame(0x8847, mpls(100, 200) + b"\0\0\0\0" + ethernet_udp_frame(SIP, src="192.0.2.7",
                                                                             dport=5060)),
            "192.0.2.7",
        ),
        ("pppoe ipv4", frame(0x8864, struct.pack(">BBHHH", 0x11, 0, 1, len(V4) + 2, 0x0021) + V4),
         "192.0.2.1"),
        ("pppoe ipv6", frame(0x8864, struct.pack(">BBHHH", 0x11, 0, 1, len(V6) + 2, 0x0057) + V6),
         "2001:db8::1"),
    ],
)  # fmt: skip
def test_sip_inside_is_decoded(name: str, data: bytes, src: str) -> None:
    _dec, out = decode_frames([data], WANT)
    assert out.row(0)["status_name"] == "ok", name
    (dgram,) = out.datagrams(0)
    assert (dgram.src_ip, dgram.dst_port, bytes(dgram.payload)) == (src, 5060, SIP)


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("mpls no bottom of stack", frame(0x8847, mpls(1, 2, bottom=False)), "truncated_l2"),
        ("mpls too deep", frame(0x8847, mpls(*range(1, 20)) + V4), "too_many_layers"),
        ("mpls unknown payload", frame(0x8847, mpls(1) + b"\x90" + V4[1:]), "not_ip"),
        ("pppoe lcp", frame(0x8864, struct.pack(">BBHHH", 0x11, 0, 1, 6, 0xC021) + b"\x01" * 4),
         "not_ip"),
        ("pppoe discovery", frame(0x8863, struct.pack(">BBHH", 0x11, 9, 0, 0)), "not_ip"),
        ("pppoe cut", frame(0x8864, b"\x11\x00"), "truncated_l2"),
    ],
)  # fmt: skip
def test_damaged_or_foreign_payloads_are_counted(name: str, data: bytes, status: str) -> None:
    _dec, out = decode_frames([data], WANT)
    assert out.row(0)["status_name"] == status, name
    assert out.datagrams(0) == []
