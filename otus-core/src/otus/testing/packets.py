"""Builders for the packets, batches and records that plugin tests need.

Frames are built byte for byte with correct IPv4 header and UDP checksums, so they decode the same
way in Otus, tshark, dpkt and scapy. Use them instead of hand-written hex in tests.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from otus.capture import LINKTYPE_ETHERNET, RawBatch, RawBatchBuilder
from otus.parsing import Datagram
from otus.records import Record

__all__ = [
    "DEFAULT_TS_NS",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "ethernet_udp_frame",
    "ip_udp_packet",
    "make_record",
    "raw_batch",
    "udp_datagram",
    "write_pcap",
]

IPPROTO_TCP = 6
IPPROTO_UDP = 17

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = 0x8100
_DEFAULT_SRC_MAC = bytes.fromhex("020000000001")
_DEFAULT_DST_MAC = bytes.fromhex("020000000002")
#: 2024-01-01T00:00:00Z: a fixed, recognisable capture time for tests.
DEFAULT_TS_NS = 1_704_067_200_000_000_000


def udp_datagram(
    payload: bytes,
    *,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.2",
    sport: int = 40000,
    dport: int = 5060,
    ts_ns: int = DEFAULT_TS_NS,
    protocol: int = IPPROTO_UDP,
    vlan_id: int = 0,
) -> Datagram:
    """A :class:`otus.Datagram` as the pipeline hands it to :meth:`otus.Parser.parse`."""
    return Datagram(
        ts_ns=ts_ns,
        src_ip=src,
        dst_ip=dst,
        src_port=sport,
        dst_port=dport,
        protocol=protocol,
        payload=memoryview(payload),
        vlan_id=vlan_id,
    )


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_udp_packet(
    payload: bytes,
    *,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.2",
    sport: int = 40000,
    dport: int = 5060,
    ttl: int = 64,
    ident: int = 1,
) -> bytes:
    """An IPv4 or IPv6 packet (chosen by the addresses) carrying one UDP datagram."""
    s = ipaddress.ip_address(src)
    d = ipaddress.ip_address(dst)
    if s.version != d.version:
        raise ValueError(f"address families differ: {src} and {dst}")
    udp_len = 8 + len(payload)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, IPPROTO_UDP, udp_len)
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", udp_len, IPPROTO_UDP)
    header = struct.pack("!HHHH", sport, dport, udp_len, 0)
    csum = _checksum(pseudo + header + payload) or 0xFFFF  # 0 means "no checksum" on the wire
    udp = struct.pack("!HHHH", sport, dport, udp_len, csum) + payload
    if s.version == 4:
        total = 20 + len(udp)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, ttl, IPPROTO_UDP, 0, s.packed, d.packed
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return ip + udp
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(udp), IPPROTO_UDP, ttl, s.packed, d.packed)
    return ip6 + udp


def ethernet_udp_frame(
    payload: bytes,
    *,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.2",
    sport: int = 40000,
    dport: int = 5060,
    vlan: int | None = None,
    src_mac: bytes = _DEFAULT_SRC_MAC,
    dst_mac: bytes = _DEFAULT_DST_MAC,
) -> bytes:
    """An Ethernet frame (optionally 802.1Q-tagged with VLAN id ``vlan``) carrying UDP."""
    packet = ip_udp_packet(payload, src=src, dst=dst, sport=sport, dport=dport)
    ethertype = _ETH_IPV4 if packet[0] >> 4 == 4 else _ETH_IPV6
    tag = b"" if vlan is None else struct.pack("!HH", _ETH_VLAN, vlan & 0x0FFF)
    return dst_mac + src_mac + tag + struct.pack("!H", ethertype) + packet


def raw_batch(
    frames: Iterable[bytes],
    *,
    ts_ns: int = DEFAULT_TS_NS,
    step_ns: int = 1_000,
    linktype: int = LINKTYPE_ETHERNET,
) -> RawBatch:
    """A :class:`otus.RawBatch` of ``frames``, timestamps ``ts_ns``, ``ts_ns + step_ns``, …"""
    builder = RawBatchBuilder()
    for i, frame in enumerate(frames):
        builder.add(frame, ts_ns=ts_ns + i * step_ns, linktype=linktype)
    return builder.build()


def write_pcap(
    path: str | Path,
    frames: Iterable[bytes],
    *,
    ts_ns: int = DEFAULT_TS_NS,
    step_ns: int = 1_000_000,
    linktype: int = LINKTYPE_ETHERNET,
) -> Path:
    """Write ``frames`` as a classic pcap file (microsecond timestamps) for capture tests."""
    path = Path(path)
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, linktype))
        for i, frame in enumerate(frames):
            secs, ns = divmod(ts_ns + i * step_ns, 1_000_000_000)
            f.write(struct.pack("<IIII", secs, ns // 1000, len(frame), len(frame)))
            f.write(frame)
    return path


def make_record(
    payload_type: str = "sip",
    *,
    labels: dict[str, str] | None = None,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.2",
    sport: int = 40000,
    dport: int = 5060,
    protocol: int = IPPROTO_UDP,
    raw_payload: bytes = b"",
    payload: dict[str, Any] | None = None,
    ts_ns: int = DEFAULT_TS_NS,
    task_id: str = "test",
    agent_id: str = "test-agent",
    pipeline_id: int = 0,
) -> Record:
    """A :class:`otus.Record` with sensible defaults for processor and reporter tests."""
    return Record(
        ts_ns=ts_ns,
        src_ip=src,
        dst_ip=dst,
        src_port=sport,
        dst_port=dport,
        protocol=protocol,
        payload_type=payload_type,
        raw_payload=raw_payload,
        payload=payload,
        labels=dict(labels) if labels else {},
        task_id=task_id,
        agent_id=agent_id,
        pipeline_id=pipeline_id,
    )
