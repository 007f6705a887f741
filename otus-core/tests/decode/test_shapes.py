"""Every supported frame shape, built with scapy, decoded by Otus and by dpkt where dpkt can.

The expected addresses, ports and payload are those the frame was built with (scapy writes the
headers); dpkt independently decodes the same bytes for the shapes it supports.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

import dpkt
import pytest
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.sctp import SCTP, SCTPChunkData, SCTPChunkInit
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from otus._decode.options import DecoderOptions, TunnelOptions

from .conftest import decode_frames

PAY = b"hello otus \x00\x01\x02 payload"
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
A4 = {"src": "192.0.2.1", "dst": "198.51.100.7"}
A6 = {"src": "2001:db8::1", "dst": "2001:db8:ffff::2"}
O4 = {"src": "10.1.1.1", "dst": "10.2.2.2"}
O6 = {"src": "fd00::a", "dst": "fd00::b"}


def udp4(sport: int = 5060, dport: int = 5062) -> Packet:
    return IP(**A4) / UDP(sport=sport, dport=dport) / Raw(PAY)


def udp6(sport: int = 5060, dport: int = 5062) -> Packet:
    return IPv6(**A6) / UDP(sport=sport, dport=dport) / Raw(PAY)


def eth(inner: Packet) -> Packet:
    return Ether(**MAC) / inner


@dataclass
class Shape:
    name: str
    frame: bytes
    linktype: int = 1
    version: int = 4
    proto: int = 17
    ports: tuple[int, int] = (5060, 5062)
    tunnel: str = "none"
    outer: dict[str, str] | None = None
    vlans: tuple[int, ...] = ()
    dpkt: bool = True


def _shapes() -> list[Shape]:
    sll = CookedLinux(
        pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01\0\0", proto=0x0800
    )
    sll2 = CookedLinuxV2(
        proto=0x86DD, ifindex=3, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01\0\0"
    )
    return [
        Shape("eth-ipv4-udp", bytes(eth(udp4()))),
        Shape(
            "eth-ipv4-options-udp",
            bytes(
                eth(
                    IP(options=[IPOption_RR(routers=["1.1.1.1", "2.2.2.2"])], **A4)
                    / UDP(sport=5060, dport=5062)
                    / Raw(PAY)
                )
            ),
        ),
        Shape(
            "eth-padding-trimmed",
            bytes(eth(IP(**A4) / UDP(sport=5060, dport=5062) / Raw(b"x"))) + b"\0" * 20,
        ),
        Shape("vlan", bytes(Ether(**MAC) / Dot1Q(vlan=100) / udp4()), vlans=(100,)),
        Shape(
            "qinq-88a8",
            bytes(Ether(**MAC) / Dot1AD(vlan=200) / Dot1Q(vlan=100) / udp4()),
            vlans=(200, 100),
        ),
        Shape(
            "qinq-9100",
            bytes(Ether(**MAC, type=0x9100) / Dot1Q(vlan=300) / Dot1Q(vlan=101) / udp4()),
            vlans=(300, 101),
            dpkt=False,
        ),
        Shape("sll", bytes(sll / udp4()), linktype=113),
        Shape("sll2-ipv6", bytes(sll2 / udp6()), linktype=276, version=6, dpkt=False),
        Shape("raw-ipv4", bytes(udp4()), linktype=101),
        Shape("raw-ipv6", bytes(udp6()), linktype=101, version=6),
        Shape("linktype-ipv4", bytes(udp4()), linktype=228),
        Shape("linktype-ipv6", bytes(udp6()), linktype=229, version=6),
        Shape("null-le", struct.pack("<I", 2) + bytes(udp4()), linktype=0),
        Shape(
            "null-be-ipv6", struct.pack(">I", 30) + bytes(udp6()), linktype=0, version=6, dpkt=False
        ),
        Shape("loop", struct.pack(">I", 2) + bytes(udp4()), linktype=108, dpkt=False),
        Shape("ipv6-udp", bytes(eth(udp6())), version=6),
        Shape(
            "ipv6-hbh-dst-routing",
            bytes(
                eth(
                    IPv6(**A6)
                    / IPv6ExtHdrHopByHop()
                    / IPv6ExtHdrDestOpt()
                    / IPv6ExtHdrRouting(addresses=["2001:db8::9"])
                    / UDP(sport=5060, dport=5062)
                    / Raw(PAY)
                )
            ),
            version=6,
        ),
        Shape(
            "ipv6-ah",
            bytes(
                eth(
                    IPv6(**A6)
                    / AH(nh=17, payloadlen=4, spi=1, seq=2, icv=b"\0" * 12)
                    / UDP(sport=5060, dport=5062)
                    / Raw(PAY)
                )
            ),
            version=6,
        ),
        Shape(
            "tcp-options",
            bytes(
                eth(
                    IP(**A4)
                    / TCP(
                        sport=5060,
                        dport=5062,
                        seq=7,
                        ack=9,
                        flags="PA",
                        options=[("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")],
                    )
                    / Raw(PAY)
                )
            ),
            proto=6,
        ),
        Shape(
            "tcp-ipv6",
            bytes(eth(IPv6(**A6) / TCP(sport=5060, dport=5062, flags="PA") / Raw(PAY))),
            version=6,
            proto=6,
        ),
        Shape(
            "sctp-data",
            bytes(eth(IP(**A4) / SCTP(sport=5060, dport=5062) / SCTPChunkData(data=PAY))),
            proto=132,
        ),
        Shape(
            "sctp-init-then-data",
            bytes(
                eth(
                    IP(**A4)
                    / SCTP(sport=5060, dport=5062)
                    / SCTPChunkInit()
                    / SCTPChunkData(data=PAY)
                )
            ),
            proto=132,
            dpkt=False,
        ),
        Shape(
            "icmp",
            bytes(eth(IP(**A4) / ICMP(type=8, id=1, seq=2) / Raw(PAY))),
            proto=1,
            ports=(0, 0),
        ),
        Shape(
            "icmpv6",
            bytes(eth(IPv6(**A6) / ICMPv6EchoRequest(id=1, seq=2, data=PAY))),
            version=6,
            proto=58,
            ports=(0, 0),
            dpkt=False,
        ),
        Shape(
            "vxlan",
            bytes(
                eth(IP(**O4) / UDP(sport=999, dport=4789) / VXLAN(vni=4242) / Ether(**MAC) / udp4())
            ),
            tunnel="vxlan",
            outer=O4,
            dpkt=False,
        ),
        Shape(
            "geneve-ipv6-outer",
            bytes(
                eth(
                    IPv6(**O6)
                    / UDP(sport=999, dport=6081)
                    / GENEVE(vni=7, proto=0x6558)
                    / Ether(**MAC)
                    / udp4()
                )
            ),
            tunnel="geneve",
            outer=O6,
            dpkt=False,
        ),
        Shape(
            "geneve-ip",
            bytes(
                eth(IP(**O4) / UDP(sport=999, dport=6081) / GENEVE(vni=7, proto=0x0800) / udp4())
            ),
            tunnel="geneve",
            outer=O4,
            dpkt=False,
        ),
        Shape("gre-ipv4", bytes(eth(IP(**O4) / GRE() / udp4())), tunnel="gre", outer=O4),
        Shape(
            "gre-keyed-seq-csum",
            bytes(
                eth(
                    IP(**O4)
                    / GRE(
                        chksum_present=1, key_present=1, key=77, seqnum_present=1, sequence_number=5
                    )
                    / udp6()
                )
            ),
            version=6,
            tunnel="gre",
            outer=O4,
            dpkt=False,
        ),
        Shape(
            "gre-teb",
            bytes(eth(IP(**O4) / GRE(proto=0x6558) / Ether(**MAC) / udp4())),
            tunnel="gre",
            outer=O4,
            dpkt=False,
        ),
        Shape(
            "erspan-ii",
            bytes(
                eth(
                    IP(**O4)
                    / GRE(seqnum_present=1, proto=0x88BE)
                    / ERSPAN_II(session_id=12)
                    / Ether(**MAC)
                    / Dot1Q(vlan=5)
                    / udp4()
                )
            ),
            tunnel="erspan",
            outer=O4,
            dpkt=False,
        ),
        Shape(
            "erspan-iii",
            bytes(
                eth(
                    IP(**O4)
                    / GRE(seqnum_present=1, proto=0x22EB)
                    / ERSPAN_III(session_id=13)
                    / Ether(**MAC)
                    / udp4()
                )
            ),
            tunnel="erspan",
            outer=O4,
            dpkt=False,
        ),
        Shape(
            "erspan-iii-platform",
            bytes(
                eth(
                    IP(**O4)
                    / GRE(proto=0x22EB)
                    / ERSPAN_III(session_id=13, o=1)
                    / ERSPAN_PlatformSpecific()
                    / Ether(**MAC)
                    / udp4()
                )
            ),
            tunnel="erspan",
            outer=O4,
            dpkt=False,
        ),
        Shape("ipip", bytes(eth(IP(**O4) / udp4())), tunnel="ipip", outer=O4),
        Shape("6in4", bytes(eth(IP(**O4) / udp6())), version=6, tunnel="ipip", outer=O4),
        Shape("4in6", bytes(eth(IPv6(**O6) / udp4())), tunnel="ipip", outer=O6, dpkt=False),
        Shape(
            "6in6", bytes(eth(IPv6(**O6) / udp6())), version=6, tunnel="ipip", outer=O6, dpkt=False
        ),
        Shape(
            "vlan-vxlan-in-gre",
            bytes(
                Ether(**MAC)
                / Dot1Q(vlan=9)
                / IP(**O4)
                / GRE()
                / IP(src="10.9.9.9", dst="10.8.8.8")
                / UDP(sport=1, dport=4789)
                / VXLAN(vni=1)
                / Ether(**MAC)
                / udp4()
            ),
            tunnel="gre",
            outer=O4,
            vlans=(9,),
            dpkt=False,
        ),
    ]


SHAPES = _shapes()


def _expected_payload(shape: Shape) -> bytes:
    return b"x" if shape.name == "eth-padding-trimmed" else PAY


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_shape_decodes_like_it_was_built(shape: Shape) -> None:
    dec, out = decode_frames([(shape.frame, shape.linktype)])
    r = out.row(0)
    assert r["status_name"] == "ok"
    addrs = A6 if shape.version == 6 else A4
    assert (r["ip_version"], r["src"], r["dst"]) == (shape.version, addrs["src"], addrs["dst"])
    assert r["ip_proto"] == shape.proto
    assert (r["src_port"], r["dst_port"]) == shape.ports
    payload = _expected_payload(shape)
    if shape.proto == 58:
        payload = PAY  # ICMPv6 echo: id/seq are inside the 8-byte header
    assert r["payload"] == payload
    assert r["tunnel_kind"] == shape.tunnel
    if shape.outer:
        assert (r["outer_src_text"], r["outer_dst_text"]) == (
            shape.outer["src"],
            shape.outer["dst"],
        )
        assert dec.stats()[f"tunnel.{shape.tunnel}"] == 1
    assert tuple(v for v in (r["vlan_outer"], r["vlan_inner"])[: r["vlan_count"]]) == shape.vlans
    if shape.proto == 6:
        assert r["tcp_flags"] == 0x18


def _dpkt_innermost(shape: Shape) -> tuple[Any, Any]:
    """(ip, l4) of the innermost IP packet as dpkt decodes the frame."""
    lt = shape.linktype
    if lt == 1:
        l3 = dpkt.ethernet.Ethernet(shape.frame).data
    elif lt == 113:
        l3 = dpkt.sll.SLL(shape.frame).data
    elif lt == 0:
        l3 = dpkt.loopback.Loopback(shape.frame).data
    elif shape.version == 6:
        l3 = dpkt.ip6.IP6(shape.frame)
    else:
        l3 = dpkt.ip.IP(shape.frame)
    while True:
        inner = l3.data
        if isinstance(inner, dpkt.gre.GRE):
            inner = inner.data
        if isinstance(inner, dpkt.ip.IP | dpkt.ip6.IP6):
            l3 = inner
            continue
        return l3, inner


DPKT_SHAPES = [s for s in SHAPES if s.dpkt]


@pytest.mark.parametrize("shape", DPKT_SHAPES, ids=[s.name for s in DPKT_SHAPES])
def test_shape_matches_dpkt(shape: Shape) -> None:
    ip, l4 = _dpkt_innermost(shape)
    _, out = decode_frames([(shape.frame, shape.linktype)])
    r = out.row(0)
    fam = socket.AF_INET6 if shape.version == 6 else socket.AF_INET
    assert r["src"] == socket.inet_ntop(fam, ip.src)
    assert r["dst"] == socket.inet_ntop(fam, ip.dst)
    if isinstance(l4, dpkt.udp.UDP | dpkt.tcp.TCP):
        assert (r["src_port"], r["dst_port"]) == (l4.sport, l4.dport)
        assert r["payload"] == bytes(l4.data)
    elif isinstance(l4, dpkt.sctp.SCTP):
        data = next(c for c in l4.chunks if c.type == dpkt.sctp.DATA)
        assert r["payload"] == bytes(data.data)[12:]  # dpkt keeps TSN/stream/seq/PPID in data
    elif isinstance(l4, dpkt.icmp.ICMP):
        assert r["payload"] == bytes(l4.data)[4:]  # dpkt's Echo keeps id/seq in data


def test_out_of_band_vlan_is_outermost() -> None:
    frame = bytes(Ether(**MAC) / Dot1Q(vlan=100) / udp4())
    _, out = decode_frames([frame], vlan_tci=0x2000 | 7)
    r = out.row(0)
    assert (r["vlan_count"], r["vlan_outer"], r["vlan_inner"]) == (2, 7, 100)


@pytest.mark.parametrize(
    ("switch", "shape_name"),
    [
        ("vxlan", "vxlan"),
        ("geneve", "geneve-ip"),
        ("gre", "gre-ipv4"),
        ("erspan", "erspan-ii"),
        ("ipip", "ipip"),
    ],
)
def test_tunnel_switched_off_reports_outer(switch: str, shape_name: str) -> None:
    shape = next(s for s in SHAPES if s.name == shape_name)
    opts = DecoderOptions(tunnels=TunnelOptions(**{switch: False}))
    _, out = decode_frames([(shape.frame, shape.linktype)], options=opts)
    r = out.row(0)
    assert r["status_name"] == "ok"
    assert r["tunnel_kind"] == "none"
    assert (r["src"], r["dst"]) == (O4["src"], O4["dst"])


def test_vxlan_on_configured_port_only() -> None:
    frame = bytes(eth(IP(**O4) / UDP(sport=999, dport=8472) / VXLAN(vni=1) / Ether(**MAC) / udp4()))
    _, out = decode_frames([frame])
    assert out.row(0)["tunnel_kind"] == "none"
    opts = DecoderOptions(tunnels=TunnelOptions(vxlan_ports=[8472]))
    _, out = decode_frames([frame], options=opts)
    assert out.row(0)["tunnel_kind"] == "vxlan"
    assert out.row(0)["tunnel_id"] == 1


def test_non_ip_frames_are_ignored_not_errors() -> None:
    arp = bytes(Ether(**MAC, type=0x0806) / Raw(b"\0" * 28))
    dec, out = decode_frames([arp])
    assert out.row(0)["status_name"] == "not_ip"
    assert dec.stats()["ignored.not_ip"] == 1
    assert not any(v for k, v in dec.stats().items() if k.startswith("error."))
