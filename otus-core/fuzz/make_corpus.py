"""Write the seed corpus of the decoder fuzz harness (one file per input; see fuzz_decode.c).

Usage: python make_corpus.py DIR. Seeds cover every decoded shape plus fragment sets, so that
mutations reach the tunnel, extension-header and reassembly code.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

LT_INDEX = {1: 0, 101: 4, 228: 5, 229: 6, 113: 7, 276: 8, 0: 9, 108: 10}


def record(frame: bytes, linktype: int = 1) -> bytes:
    return bytes([LT_INDEX[linktype]]) + struct.pack(">H", len(frame)) + frame


def seeds() -> list[bytes]:
    from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
    from scapy.contrib.geneve import GENEVE
    from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
    from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
    from scapy.layers.sctp import SCTP, SCTPChunkData
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import Raw

    mac = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    sip = Raw(b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n")
    u4 = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5060) / sip
    u6 = (
        IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=4000, dport=4002) / Raw(b"\x80" * 40)
    )
    shapes = [
        record(bytes(Ether(**mac) / u4)),
        record(bytes(Ether(**mac) / Dot1AD(vlan=2) / Dot1Q(vlan=3) / u6)),
        record(
            bytes(
                Ether(**mac)
                / IP(src="1.1.1.1", dst="2.2.2.2")
                / TCP(sport=5060, dport=9, options=[("MSS", 1460)])
                / Raw(b"SIP/2.0 200 OK\r\n")
            )
        ),
        record(
            bytes(
                Ether(**mac)
                / IP(src="1.1.1.1", dst="2.2.2.2")
                / SCTP(sport=1, dport=2)
                / SCTPChunkData(data=b"GET x")
            )
        ),
        record(bytes(Ether(**mac) / IP(src="1.1.1.1", dst="2.2.2.2") / ICMP() / Raw(b"ping"))),
        record(
            bytes(
                Ether(**mac)
                / IP(src="1.1.1.1", dst="2.2.2.2")
                / UDP(sport=1, dport=4789)
                / VXLAN(vni=1)
                / Ether(**mac)
                / u4
            )
        ),
        record(
            bytes(
                Ether(**mac)
                / IPv6(src="::1", dst="::2")
                / UDP(sport=1, dport=6081)
                / GENEVE(proto=0x0800)
                / u4
            )
        ),
        record(
            bytes(Ether(**mac) / IP(src="1.1.1.1", dst="2.2.2.2") / GRE(key_present=1, key=3) / u6)
        ),
        record(
            bytes(
                Ether(**mac)
                / IP(src="1.1.1.1", dst="2.2.2.2")
                / GRE(seqnum_present=1, proto=0x88BE)
                / ERSPAN_II()
                / Ether(**mac)
                / u4
            )
        ),
        record(
            bytes(
                Ether(**mac)
                / IP(src="1.1.1.1", dst="2.2.2.2")
                / GRE(proto=0x22EB)
                / ERSPAN_III()
                / Ether(**mac)
                / u4
            )
        ),
        record(
            bytes(
                Ether(**mac)
                / IPv6(src="::1", dst="::2")
                / IPv6ExtHdrHopByHop()
                / IPv6ExtHdrRouting()
                / u4
            )
        ),
        record(bytes(CookedLinux(proto=0x0800) / u4), 113),
        record(bytes(CookedLinuxV2(proto=0x86DD) / u6), 276),
        record(bytes(u4), 101)
        + record(bytes(u6), 229)
        + record(struct.pack("<I", 2) + bytes(u4), 0),
    ]
    big = (
        IP(src="10.0.0.1", dst="10.0.0.2", id=9)
        / UDP(sport=5060, dport=5060)
        / sip
        / Raw(b"a" * 2000)
    )
    frag_v4 = b"".join(record(bytes(Ether(**mac) / f)) for f in fragment(big, fragsize=512))
    l4 = bytes(UDP(sport=5060, dport=5060) / Raw(b"b" * 1200))
    frag_v6 = b"".join(
        record(
            bytes(
                Ether(**mac)
                / IPv6(src="::1", dst="::2")
                / IPv6ExtHdrFragment(nh=17, offset=a // 8, m=int(a + 400 < len(l4)), id=5)
                / Raw(l4[a : a + 400])
            )
        )
        for a in range(0, len(l4), 400)
    )
    out = [b"\x00" + s for s in shapes]
    out += [b"\x00" + frag_v4, b"\x40" + frag_v4, b"\x80" + frag_v4, b"\x00" + frag_v6]
    out.append(b"\x00" + frag_v4[::-1][: len(frag_v4) // 2])
    return out


def main(directory: str) -> None:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds()):
        (path / f"seed-{i:03d}").write_bytes(seed)


if __name__ == "__main__":
    main(sys.argv[1])
