"""Frame builders and a collector for live capture tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import dpkt

from otus import Capturer
from otus.capture import PACKET_DESC

OTHER_MAC = b"\x02\x00\x00\x00\x00\x99"  # unicast to nobody: the receiving stack ignores it


@dataclass(frozen=True)
class Packet:
    """One captured packet, copied out of its batch."""

    frame: bytes
    ts_ns: int
    wirelen: int
    ifindex: int
    linktype: int
    vlan_tci: int
    vlan_tpid: int
    flags: int


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes, *,
              src_mac: bytes, dst_mac: bytes = OTHER_MAC) -> bytes:  # fmt: skip
    """An Ethernet/IPv4/UDP frame with correct lengths and checksums."""
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, ttl=64, data=udp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=src_mac, dst=dst_mac, type=0x0800, data=ip))


def ipv4_fragments(
    src: str, dst: str, sport: int, dport: int, payload: bytes, *, src_mac: bytes, size: int = 512
) -> list[bytes]:
    """A UDP datagram split into IPv4 fragments of ``size`` bytes of IP payload each."""
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, ttl=64, data=udp)
    ip.len = len(ip)
    body = bytes(dpkt.ip.IP(bytes(ip)).data)  # the UDP header with the checksum dpkt computed
    frames = []
    for off in range(0, len(body), size):
        chunk = body[off : off + size]
        more = off + size < len(body)
        frag = dpkt.ip.IP(src=ip.src, dst=ip.dst, p=17, ttl=64, id=0x4242, data=chunk)
        frag.mf = int(more)
        frag.offset = off // 8  # in 8-byte units, as on the wire
        frag.len = 20 + len(chunk)
        frames.append(
            bytes(dpkt.ethernet.Ethernet(src=src_mac, dst=OTHER_MAC, type=0x0800, data=frag))
        )
    return frames


def ipv6_fragments(sport: int, dport: int, payload: bytes, *, src_mac: bytes,
                   size: int = 512) -> list[bytes]:  # fmt: skip
    """A UDP datagram over IPv6 (documentation addresses) split with a fragment header."""
    src, dst = (
        socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
        socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
    )
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    body = bytes(udp)
    frames = []
    for off in range(0, len(body), size):
        chunk = body[off : off + size]
        more = 1 if off + size < len(body) else 0
        fh = (
            bytes([17, 0])
            + ((off // 8) << 3 | more).to_bytes(2, "big")
            + (0x1234).to_bytes(4, "big")
        )
        ip6 = (
            bytes([0x60, 0, 0, 0])
            + (len(fh) + len(chunk)).to_bytes(2, "big")
            + bytes([44, 64])
            + src
            + dst
        )
        frames.append(OTHER_MAC + src_mac + b"\x86\xdd" + ip6 + fh + chunk)
    return frames


def collect(
    cap: Capturer, enough: Callable[[list[Packet]], bool], timeout: float = 5.0
) -> list[Packet]:
    """Read batches until ``enough(packets)`` or ``timeout`` seconds (then ``stop()`` ends it)."""
    got: list[Packet] = []
    timer = threading.Timer(timeout, cap.stop)
    timer.start()
    try:
        for batch in cap.batches():
            data = memoryview(batch.data)
            for ts, off, caplen, wirelen, ifindex, lt, tci, tpid, flags in PACKET_DESC.iter_unpack(
                memoryview(batch.descs)[: batch.count * PACKET_DESC.size]
            ):
                got.append(
                    Packet(
                        bytes(data[off : off + caplen]), ts, wirelen, ifindex, lt, tci, tpid, flags
                    )
                )
            del data
            batch.release()
            if enough(got):
                break
    finally:
        timer.cancel()
    return got


def count_at_least(n: int) -> Callable[[list[Packet]], bool]:
    return lambda pkts: len(pkts) >= n
