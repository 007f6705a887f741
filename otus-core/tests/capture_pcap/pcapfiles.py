"""Hand-built pcap and pcapng files, written from the format specs independently of Otus."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from otus._capture_pcap.capturer import PcapCapturer
from otus._capture_pcap.options import PcapOptions
from otus.capture import PACKET_DESC
from otus.errors import CaptureError


@dataclass(frozen=True)
class Pkt:
    """A packet as a reader should report it."""

    ts_ns: int
    data: bytes
    linktype: int = 1
    ifindex: int = 0
    wirelen: int | None = None

    def key(self) -> tuple[int, bytes, int, int, int]:
        wl = len(self.data) if self.wirelen is None else self.wirelen
        return (self.ts_ns, self.data, self.linktype, self.ifindex, wl)


def frames(n: int, *, seed: int = 0) -> list[bytes]:
    """``n`` frames of varied sizes (0..1514 bytes) with recognisable contents."""
    out = []
    for i in range(n):
        size = (i * 97 + seed * 31) % 1515
        out.append(bytes((i + j + seed) & 0xFF for j in range(size)))
    return out


def pcap_file(
    packets: list[Pkt], *, endian: str = "<", nano: bool = False, snaplen: int = 65535
) -> bytes:
    linktype = packets[0].linktype if packets else 1
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    for p in packets:
        sec, frac = divmod(p.ts_ns, 10**9)
        if not nano:
            frac //= 1000
        wl = len(p.data) if p.wirelen is None else p.wirelen
        out += struct.pack(endian + "IIII", sec, frac, len(p.data), wl) + p.data
    return bytes(out)


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


class PcapngBuilder:
    """Appends pcapng blocks in one byte order (a new ``shb()`` may switch it)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.e = "<"

    def block(self, btype: int, body: bytes) -> PcapngBuilder:
        body = _pad(body)
        total = 12 + len(body)
        self.out += (
            struct.pack(self.e + "II", btype, total) + body + struct.pack(self.e + "I", total)
        )
        return self

    def shb(self, endian: str = "<") -> PcapngBuilder:
        self.e = endian
        opts = self.option(4, b"otus tests") + self.option(0, b"")
        return self.block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)

    def option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self.e + "HH", code, len(value)) + _pad(value)

    def idb(
        self,
        linktype: int,
        *,
        snaplen: int = 0,
        tsresol: int | None = None,
        tsoffset: int | None = None,
    ) -> PcapngBuilder:
        opts = self.option(2, b"eth0")
        if tsresol is not None:
            opts += self.option(9, bytes([tsresol]))
        if tsoffset is not None:
            opts += self.option(14, struct.pack(self.e + "q", tsoffset))
        opts += self.option(0, b"")
        return self.block(1, struct.pack(self.e + "HHI", linktype, 0, snaplen) + opts)

    def epb(self, ifid: int, ts: int, data: bytes, wirelen: int | None = None) -> PcapngBuilder:
        wl = len(data) if wirelen is None else wirelen
        head = struct.pack(self.e + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), wl)
        return self.block(6, head + _pad(data) + self.option(1, b"a comment") + self.option(0, b""))

    def opb(self, ifid: int, ts: int, data: bytes) -> PcapngBuilder:
        head = struct.pack(
            self.e + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)
        )
        return self.block(2, head + data)

    def spb(self, data: bytes, wirelen: int | None = None) -> PcapngBuilder:
        wl = len(data) if wirelen is None else wirelen
        return self.block(3, struct.pack(self.e + "I", wl) + data)

    def bytes(self) -> bytes:
        return bytes(self.out)


def units_to_ns(ts: int, tsresol: int) -> int:
    """Timestamp units of an interface with ``if_tsresol`` to nanoseconds (rounded down)."""
    if tsresol & 0x80:
        return (ts * 10**9) >> (tsresol & 0x7F)
    return ts * 10**9 // 10 ** (tsresol & 0x7F)


def batch_packets(batch: object) -> list[Pkt]:
    """The packets of a raw batch, as :class:`Pkt`."""
    out = []
    data = batch.data  # type: ignore[attr-defined]
    for i in range(batch.count):  # type: ignore[attr-defined]
        ts, off, cap, wl, ifi, lt, _tci, _tpid, _fl = PACKET_DESC.unpack_from(
            batch.descs,  # type: ignore[attr-defined]
            i * PACKET_DESC.size,
        )
        out.append(Pkt(ts, bytes(data[off : off + cap]), lt, ifi, wl))
    return out


def read_all(
    path: str, *, chunk_size: int | None = None, **options: Any
) -> tuple[list[Pkt], CaptureError | None, PcapCapturer]:
    """Every packet the capturer yields from ``path``, the error that ended it (if any), and
    the capturer (for its stats)."""
    kw: dict[str, Any] = {} if chunk_size is None else {"chunk_size": chunk_size}
    cap = PcapCapturer(PcapOptions(path=path, **options), **kw)
    out: list[Pkt] = []
    err: CaptureError | None = None
    cap.open()
    try:
        for batch in cap.batches():
            out += batch_packets(batch)
            batch.release()
    except CaptureError as e:
        err = e
    finally:
        cap.close()
    return out, err, cap


def read_ok(path: str, **options: Any) -> list[Pkt]:
    """Every packet of an undamaged file."""
    pkts, err, _ = read_all(path, **options)
    assert err is None, str(err)
    return pkts
