"""Decode + classify rate of the C batch decoder on a VoIP mix, and IPv4 reassembly rate.

Rows (median of several runs, all in the same process):
- decode+classify: ``Decoder.decode`` plus the Python side a SIP parser sees (``datagrams`` and
  ``tcp_segments`` of the SIP interest) over batches of 1024 frames of ``bench/voip_mix.py``;
  peer: dpkt decoding the same frames (Ethernet/VLAN/IP/IPv6/UDP/TCP, SIP port check);
- the same on a sample, with scapy as the peer;
- IPv4 fragment reassembly (fragments/s), peer: scapy's ``defragment`` on a sample.

``python bench/bench_decode.py [--quick]`` prints the rows.
"""

from __future__ import annotations

import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import voip_mix

BATCH = 1024


def _batches(frames: list[tuple[int, int, bytes]]) -> list[Any]:
    from otus import RawBatchBuilder

    out = []
    b = RawBatchBuilder()
    for ts, lt, frame in frames:
        b.add(frame, ts_ns=ts, linktype=lt)
        if len(b) == BATCH:
            out.append(b.build())
    if len(b):
        out.append(b.build())
    return out


def _sip_decoder() -> Any:
    from otus import Interest
    from otus._decode.decoder import Decoder
    from otus._decode.options import DecoderOptions

    sip = Interest(
        transports=frozenset({"udp", "tcp"}),
        ports=frozenset({5060, 5061}),
        detector="sip",
        tcp_stream=True,
    )
    return Decoder(DecoderOptions(), [sip])


def _otus(batches: list[Any]) -> tuple[int, int]:
    dec = _sip_decoder()
    n = wanted = 0
    for batch in batches:
        out = dec.decode(batch)
        wanted += len(out.datagrams(0)) + len(out.tcp_segments(0))
        n += batch.count
    return n, wanted


def _dpkt(frames: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    import dpkt

    wanted = 0
    for _, _, frame in frames:
        eth = dpkt.ethernet.Ethernet(frame)
        ip = eth.data
        if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
            l4 = ip.data
            if isinstance(l4, dpkt.udp.UDP | dpkt.tcp.TCP) and (
                l4.sport in (5060, 5061) or l4.dport in (5060, 5061) or l4.data[:8] == b"SIP/2.0 "
            ):
                wanted += 1
    return len(frames), wanted


def _scapy(frames: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.l2 import Ether

    wanted = 0
    for _, _, frame in frames:
        p = Ether(frame)
        l4 = p.getlayer(UDP) or p.getlayer(TCP)
        if l4 is not None and (l4.sport in (5060, 5061) or l4.dport in (5060, 5061)):
            wanted += 1
    return len(frames), wanted


def _rate(fn: Callable[[Any], tuple[int, int]], arg: Any, runs: int) -> float:
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        n, _ = fn(arg)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def _fragments(datagrams: int) -> list[tuple[int, int, bytes]]:
    """``datagrams`` UDP datagrams of 4000 bytes, each as 3 IPv4 fragments (ids distinct)."""
    out = []
    for i in range(datagrams):
        udp = struct.pack("!HHHH", 5060, 5060, 4000, 0) + bytes(3992)
        src = bytes([10, 1, (i >> 8) & 255, i & 255])
        for off in range(0, len(udp), 1480):
            more = 0x2000 if off + 1480 < len(udp) else 0
            l3 = voip_mix._ipv4(
                src, b"\x0a\x02\x00\x01", 17, udp[off : off + 1480], i, more | off // 8
            )
            out.append((1_700_000_000_000_000_000 + i * 1000, 1, voip_mix._eth(l3)))
    return out


def _otus_frag(batches: list[Any]) -> tuple[int, int]:
    from otus._decode.decoder import Decoder
    from otus._decode.options import DecoderOptions

    dec = Decoder(DecoderOptions(), [])
    n = 0
    for batch in batches:
        dec.decode(batch)
        n += batch.count
    assert dec.stats()["reassembled"] * 3 == n, dec.stats()
    return n, 0


def _scapy_frag(frames: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    from scapy.layers.inet import defragment
    from scapy.layers.l2 import Ether

    pkts = [Ether(f) for _, _, f in frames]
    done = defragment(pkts)
    return len(frames), len(done)


def run(quick: bool) -> list[dict[str, object]]:
    n = 200_000 if quick else 1_000_000
    sample = 5_000 if quick else 20_000
    runs = 3 if quick else 5
    frames = voip_mix.frames(n)
    batches = _batches(frames)
    _otus(batches[:10])  # warm up the extension
    otus = _rate(_otus, batches, runs)
    dpkt_rate = _rate(_dpkt, frames, runs)
    small = frames[:sample]
    small_batches = _batches(small)
    otus_small = _rate(_otus, small_batches, runs)
    scapy_rate = _rate(_scapy, small, 1)
    frags = _fragments(20_000 if quick else 100_000)
    frag_batches = _batches(frags)
    otus_frag = _rate(_otus_frag, frag_batches, runs)
    scapy_frag = _rate(_scapy_frag, frags[:3000], 1)
    return [
        {
            "stage": "decode+classify (VoIP mix)",
            "otus_rate": otus,
            "unit": "pkt/s",
            "peer": "dpkt",
            "peer_rate": dpkt_rate,
            "note": f"{n} frames, batches of {BATCH}, SIP interest incl. Python objects;"
            " target >= 4M",
        },
        {
            "stage": "decode+classify (sample)",
            "otus_rate": otus_small,
            "unit": "pkt/s",
            "peer": "scapy",
            "peer_rate": scapy_rate,
            "note": f"{sample}-frame sample",
        },
        {
            "stage": "IPv4 fragment reassembly",
            "otus_rate": otus_frag,
            "unit": "frag/s",
            "peer": "scapy defragment",
            "peer_rate": scapy_frag,
            "note": "3 fragments per 4000-byte datagram; target >= 500K",
        },
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        ratio = ""
        if row["peer_rate"]:
            ratio = f"  x{float(row['otus_rate']) / float(row['peer_rate']):.1f}"  # type: ignore[arg-type]
        print(
            f"{row['stage']:<30} {float(row['otus_rate']):>14,.0f} {row['unit']:<7} "  # type: ignore[arg-type]
            f"{row['peer']}: {float(row['peer_rate'] or 0):,.0f}{ratio}  ({row['note']})"  # type: ignore[arg-type]
        )
