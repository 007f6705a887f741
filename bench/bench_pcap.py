"""pcap read rate: Otus's pcap capturer vs dpkt.pcap.Reader and scapy's RawPcapReader.

Generates a VoIP-like capture (mostly ~214-byte RTP frames, some larger SIP frames) once in a
temporary directory, then reads it with each reader in the same run; the rate is the median of
several runs. ``python bench/bench_pcap.py [--quick]`` prints the rows.
"""

from __future__ import annotations

import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _write_capture(path: Path, packets: int) -> None:
    rtp = bytes(range(256)) * 1
    sip = (b"INVITE sip:bob@example.com SIP/2.0\r\n" * 30)[:900]
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    rec = struct.Struct("<IIII")
    for i in range(packets):
        frame = sip if i % 50 == 0 else rtp[: 214 - (i % 3)]
        out += rec.pack(1_700_000_000 + i // 50_000, (i % 50_000) * 20, len(frame), len(frame))
        out += frame
    path.write_bytes(out)


def _otus(path: Path) -> int:
    from otus._capture_pcap.capturer import PcapCapturer
    from otus._capture_pcap.options import PcapOptions

    cap = PcapCapturer(PcapOptions(path=str(path)))
    cap.open()
    n = 0
    for batch in cap.batches():
        n += batch.count
        batch.release()
    cap.close()
    return n


def _dpkt(path: Path) -> int:
    import dpkt

    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def _scapy(path: Path) -> int:
    from scapy.utils import RawPcapReader

    with RawPcapReader(str(path)) as r:
        return sum(1 for _ in r)


def _rate(fn: Callable[[Path], int], path: Path, expect: int, runs: int) -> float:
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        n = fn(path)
        rates.append(n / (time.perf_counter() - t))
        assert n == expect, (fn.__name__, n, expect)
    return statistics.median(rates)


def run(quick: bool) -> list[dict[str, object]]:
    packets = 200_000 if quick else 2_000_000
    sample = 20_000 if quick else 100_000  # scapy is slow: read a sample file
    runs = 3 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "voip.pcap", Path(tmp) / "sample.pcap"
        _write_capture(big, packets)
        _write_capture(small, sample)
        _otus(big)  # warm the page cache and the extension
        otus = _rate(_otus, big, packets, runs)
        dpkt_rate = _rate(_dpkt, big, packets, runs)
        otus_small = _rate(_otus, small, sample, runs)
        scapy_rate = _rate(_scapy, small, sample, runs)
    note = f"{packets:,} packets, page cache, one core"
    return [
        {
            "stage": "pcap read",
            "otus_rate": otus,
            "unit": "pkt/s",
            "peer": "dpkt.pcap.Reader",
            "peer_rate": dpkt_rate,
            "note": note,
        },
        {
            "stage": "pcap read (sample)",
            "otus_rate": otus_small,
            "unit": "pkt/s",
            "peer": "scapy RawPcapReader",
            "peer_rate": scapy_rate,
            "note": f"{sample:,} packets",
        },
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        ratio = row["otus_rate"] / row["peer_rate"]  # type: ignore[operator]
        print(
            f"{row['stage']:<20} otus {row['otus_rate']:>14,.0f} {row['unit']}  "
            f"{row['peer']} {row['peer_rate']:>12,.0f}  x{ratio:.1f}  ({row['note']})"
        )
