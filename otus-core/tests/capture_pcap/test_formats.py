"""Every supported file format variant, compared packet by packet with independent readers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dpkt
import pytest
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, PcapWriter, rdpcap

from otus._capture_pcap.capturer import PcapCapturer
from otus._capture_pcap.options import PcapOptions

from .pcapfiles import (
    PcapngBuilder,
    Pkt,
    batch_packets,
    frames,
    pcap_file,
    read_all,
    read_ok,
    units_to_ns,
)

T0 = 1_700_000_000_123_456_789


def ether(payload: bytes) -> Ether:
    return Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02", type=0x0800) / Raw(payload)


def dpkt_packets(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        return [(float(ts), bytes(buf)) for ts, buf in dpkt.pcap.UniversalReader(f)]


def scapy_packets(path: Path) -> list[tuple[int, bytes]]:
    return [(int(Decimal(p.time) * 10**9), bytes(p.original)) for p in rdpcap(str(path))]


def assert_same_as_oracles(path: Path, got: list[Pkt]) -> None:
    """Bytes and timestamps as dpkt (float seconds) and scapy (exact) read them."""
    ref = dpkt_packets(path)
    assert [p.data for p in got] == [b for _, b in ref]
    for p, (ts, _) in zip(got, ref, strict=True):
        assert abs(p.ts_ns - ts * 1e9) < 1000
    exact = scapy_packets(path)
    assert [(p.ts_ns, p.data) for p in got] == exact


@pytest.mark.parametrize("nano", [False, True])
def test_scapy_pcap(tmp_path: Path, *, nano: bool) -> None:
    path = tmp_path / "s.pcap"
    pkts = [ether(f) for f in frames(50)]
    with PcapWriter(str(path), nano=nano, linktype=1) as w:
        for i, p in enumerate(pkts):
            p.time = Decimal(T0 + i * 1_000_003) / 10**9
            w.write(p)
    got = read_ok(str(path))
    assert len(got) == 50
    assert_same_as_oracles(path, got)
    if nano:
        assert got[1].ts_ns == T0 + 1_000_003
    else:  # microseconds on disk (scapy rounds to the nearest one)
        assert abs(got[1].ts_ns - (T0 + 1_000_003)) <= 500


def test_scapy_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    with PcapNgWriter(str(path)) as w:
        for i, f in enumerate(frames(40, seed=3)):
            p = ether(f)
            p.time = Decimal(T0 + i * 777_000) / 10**9
            w.write(p)
    got = read_ok(str(path))
    assert len(got) == 40
    assert_same_as_oracles(path, got)


@pytest.mark.parametrize("nano", [False, True])
def test_dpkt_pcap_and_pcapng(tmp_path: Path, *, nano: bool) -> None:
    data = frames(60, seed=5)
    p1, p2 = tmp_path / "d.pcap", tmp_path / "d.pcapng"
    with open(p1, "wb") as f:
        w = dpkt.pcap.Writer(f, nano=nano)
        for i, d in enumerate(data):
            w.writepkt(d, ts=1_700_000_000 + i / 1024)
    with open(p2, "wb") as f:
        w2 = dpkt.pcapng.Writer(f)
        for i, d in enumerate(data):
            w2.writepkt(d, ts=1_700_000_000 + i / 1024)
    for path in (p1, p2):
        got = read_ok(str(path))
        assert [p.data for p in got] == data
        ref = dpkt_packets(path)
        for p, (ts, _) in zip(got, ref, strict=True):
            assert abs(p.ts_ns - ts * 1e9) < 1000


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_byte_orders_and_resolutions(
    tmp_path: Path, endian: str, *, nano: bool
) -> None:
    pkts = [Pkt(T0 + i * 1_234_567, d) for i, d in enumerate(frames(30))]
    path = tmp_path / "h.pcap"
    path.write_bytes(pcap_file(pkts, endian=endian, nano=nano))
    got = read_ok(str(path))
    want = [p if nano else Pkt(p.ts_ns // 1000 * 1000, p.data) for p in pkts]
    assert [p.key() for p in got] == [p.key() for p in want]
    assert_same_as_oracles(path, got)


@pytest.mark.parametrize("linktype", [0, 1, 101, 108, 113, 228, 229, 276])
def test_link_types_pass_through(tmp_path: Path, linktype: int) -> None:
    pkts = [Pkt(T0, b"\x45" + bytes(39), linktype), Pkt(T0 + 1000, b"\x60" + bytes(59), linktype)]
    path = tmp_path / "l.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    assert [p.key() for p in read_ok(str(path))] == [p.key() for p in pkts]


def test_wire_length_is_kept_when_snapped(tmp_path: Path) -> None:
    pkts = [Pkt(T0, bytes(96), wirelen=1500)]
    path = tmp_path / "snap.pcap"
    path.write_bytes(pcap_file(pkts, nano=True, snaplen=96))
    assert read_ok(str(path))[0].wirelen == 1500


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_block_kinds(tmp_path: Path, endian: str) -> None:
    b = PcapngBuilder().shb(endian)
    b.idb(1)  # default microseconds
    b.idb(113, tsresol=9)  # nanoseconds
    b.idb(101, tsresol=0x80 | 20, tsoffset=5)  # 2^-20 s units, 5 s offset
    b.idb(276, snaplen=64, tsresol=3)  # milliseconds
    want: list[Pkt] = []
    d = frames(12, seed=7)
    us = 1_700_000_000_123_456
    b.epb(0, us, d[1])
    want.append(Pkt(us * 1000, d[1], 1, 0))
    ns = 1_700_000_000_987_654_321
    b.epb(1, ns, d[2], wirelen=len(d[2]) + 100)
    want.append(Pkt(ns, d[2], 113, 1, len(d[2]) + 100))
    b.block(0x0BAD, b"unknown block type")  # skipped
    b.block(5, bytes(20))  # interface statistics: skipped
    u2 = 1_700_000_000 * 2**20 + 12345
    b.epb(2, u2, d[3])
    want.append(Pkt(units_to_ns(u2, 0x80 | 20) + 5 * 10**9, d[3], 101, 2))
    ms = 1_700_000_000_321
    b.epb(3, ms, d[4][:64], wirelen=len(d[4]))
    want.append(Pkt(ms * 10**6, d[4][:64], 276, 3, len(d[4])))
    b.opb(1, ns + 5, d[5])
    want.append(Pkt(ns + 5, d[5], 113, 1))
    b.spb(d[6])  # no timestamp and interface 0: the previous timestamp is kept
    want.append(Pkt(ns + 5, d[6], 1, 0))
    # a second section in the other byte order restarts the interface numbering
    b.shb(">" if endian == "<" else "<")
    b.idb(228, tsresol=6)
    b.epb(0, us + 1, d[7])
    want.append(Pkt((us + 1) * 1000, d[7], 228, 0))
    path = tmp_path / "multi.pcapng"
    path.write_bytes(b.bytes())
    got, err, cap = read_all(str(path))
    assert err is None
    assert [p.key() for p in got] == [p.key() for p in want]
    assert cap.stats()["pcapng.skipped_blocks"] == 2
    # dpkt reads the same bytes where it supports the blocks (EPB of one section)
    assert dpkt_packets_first_epbs(path) == [p.data for p in got[:4]]


def dpkt_packets_first_epbs(path: Path) -> list[bytes]:
    out = []
    with open(path, "rb") as f:
        try:
            for _, buf in dpkt.pcapng.Reader(f):
                out.append(bytes(buf))
                if len(out) == 4:
                    break
        except (ValueError, dpkt.UnpackError):
            pass
    return out


def test_batches_follow_limits(tmp_path: Path) -> None:
    pkts = [Pkt(T0 + i, bytes([i & 0xFF]) * 100) for i in range(1000)]
    path = tmp_path / "b.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    for max_pkts, max_bytes, per_batch in [(100, 65536, 100), (4096, 65536, 655)]:
        cap = PcapCapturer(
            PcapOptions(path=str(path), batch_packets=max_pkts, batch_bytes=max_bytes)
        )
        cap.open()
        counts = []
        got: list[Pkt] = []
        for batch in cap.batches():
            counts.append(batch.count)
            got += batch_packets(batch)
            batch.release()
        cap.close()
        assert [p.key() for p in got] == [p.key() for p in pkts]
        assert counts[:-1] == [per_batch] * (len(counts) - 1)
        assert cap.stats()["packets"] == 1000
        assert cap.stats()["bytes"] == 100_000


@pytest.mark.parametrize("chunk_size", [64, 1000, 4096])
def test_records_cut_by_chunks_are_carried_over(tmp_path: Path, chunk_size: int) -> None:
    pkts = [Pkt(T0 + i, d) for i, d in enumerate(frames(300))]
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    got = read_ok(str(path), chunk_size=chunk_size)
    assert [p.key() for p in got] == [p.key() for p in pkts]
    b = PcapngBuilder().shb()
    b.idb(1, tsresol=9)
    for p in pkts:
        b.epb(0, p.ts_ns, p.data)
    path.write_bytes(b.bytes())
    got = read_ok(str(path), chunk_size=chunk_size)
    assert [p.key() for p in got] == [p.key() for p in pkts]
