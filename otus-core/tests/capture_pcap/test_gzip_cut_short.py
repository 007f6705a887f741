"""A gzip capture cut short (a copy interrupted, a file still being written): every record the
compressed bytes hold is read, then one truncation error, counted as a plain file's would be."""

from __future__ import annotations

import zlib
from pathlib import Path

from .pcapfiles import Pkt, frames, pcap_file, read_all

T0 = 1_600_000_000_000_000_000


def packets() -> list[Pkt]:
    return [Pkt(T0 + i * 1000, d) for i, d in enumerate(frames(300, seed=5))]


def gzip_prefix(raw: bytes, upto: int) -> bytes:
    """A gzip stream of ``raw[:upto]`` that stops there (flushed, no end marker)."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    return z.compress(raw[:upto]) + z.flush(zlib.Z_SYNC_FLUSH)


def record_ends(pkts: list[Pkt]) -> list[int]:
    ends = [24]
    for p in pkts:
        ends.append(ends[-1] + 16 + len(p.data))
    return ends


def test_every_record_before_the_cut_is_read_then_a_truncation(tmp_path: Path) -> None:
    pkts = packets()
    raw = pcap_file(pkts, nano=True)
    ends = record_ends(pkts)
    path = tmp_path / "calls.pcap.gz"
    for upto in (ends[150] + 9, ends[200] + 30, len(raw) - 5):
        path.write_bytes(gzip_prefix(raw, upto))
        got, err, cap = read_all(str(path))
        complete = sum(1 for e in ends[1:] if e <= upto)
        assert [p.key() for p in got] == [p.key() for p in pkts[:complete]], upto
        assert err is not None
        assert f"calls.pcap.gz: truncated record {complete + 1} at byte {ends[complete]} " in str(
            err
        )
        assert "the gzip data ends early: a truncated file, or one still being written" in str(err)
        assert cap.stats()["errors.truncated"] == 1


def test_a_cut_between_records_is_still_a_truncation(tmp_path: Path) -> None:
    pkts = packets()
    raw = pcap_file(pkts, nano=True)
    cut = record_ends(pkts)[120]
    path = tmp_path / "calls.pcap.gz"
    path.write_bytes(gzip_prefix(raw, cut))
    got, err, cap = read_all(str(path))
    assert [p.key() for p in got] == [p.key() for p in pkts[:120]]
    assert str(err) == (
        f"calls.pcap.gz: truncated after record 120 at byte {cut} of the uncompressed data "
        "(the gzip data ends early: a truncated file, or one still being written)"
    )
    assert cap.stats()["errors.truncated"] == 1
