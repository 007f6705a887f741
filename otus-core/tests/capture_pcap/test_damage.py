"""Truncated and corrupt files: every complete packet first, then one clear error."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from .pcapfiles import PcapngBuilder, Pkt, frames, pcap_file, read_all

T0 = 1_600_000_000_000_000_000


def packets() -> list[Pkt]:
    return [Pkt(T0 + i * 1000, d) for i, d in enumerate(frames(40, seed=11))]


def test_truncated_pcap_at_every_record_boundary_and_inside(tmp_path: Path) -> None:
    pkts = packets()
    whole = pcap_file(pkts, nano=True)
    ends = [24]
    for p in pkts:
        ends.append(ends[-1] + 16 + len(p.data))
    path = tmp_path / "calls.pcap"
    cuts = sorted({*range(60), *ends, *(e + 7 for e in ends), *(e + 20 for e in ends)})
    for cut in cuts:
        if cut >= len(whole):
            continue
        path.write_bytes(whole[:cut])
        got, err, cap = read_all(str(path), chunk_size=512)
        complete = sum(1 for e in ends[1:] if e <= cut)
        assert [p.key() for p in got] == [p.key() for p in pkts[:complete]], cut
        if cut in ends:  # a clean end of file between records is not damage
            assert err is None
            continue
        assert err is not None, cut
        msg = str(err)
        if cut == 0:
            assert msg == "calls.pcap: empty file header at byte 0 (no pcap or pcapng header)"
            continue
        assert msg.startswith("calls.pcap: truncated "), msg
        if cut >= 24:
            start = max(e for e in ends if e <= cut)
            assert f"record {complete + 1} at byte {start} " in msg, msg
            if cut - start >= 16:
                said = len(pkts[complete].data)
                assert f"(header says {said} bytes, {cut - start - 16} remain)" in msg, msg
            else:
                assert f"({cut - start} bytes of a 16-byte record header)" in msg, msg
        assert cap.stats()["errors.truncated"] == 1


def test_truncated_pcapng(tmp_path: Path) -> None:
    b = PcapngBuilder().shb()
    b.idb(1, tsresol=9)
    pkts = packets()
    ends = []
    for p in pkts:
        b.epb(0, p.ts_ns, p.data)
        ends.append(len(b.out))
    whole = b.bytes()
    path = tmp_path / "t.pcapng"
    for cut in range(ends[0] - 30, len(whole), 97):
        path.write_bytes(whole[:cut])
        got, err, _ = read_all(str(path))
        complete = sum(1 for e in ends if e <= cut)
        assert [p.key() for p in got] == [p.key() for p in pkts[:complete]]
        if cut in ends:
            assert err is None
        else:
            assert err is not None
            assert f"truncated block {complete + 3} at byte" in str(err), str(err)


def test_corrupt_caplen(tmp_path: Path) -> None:
    pkts = packets()
    data = bytearray(pcap_file(pkts, nano=True))
    off = 24 + 16 + len(pkts[0].data)  # second record
    struct.pack_into("<I", data, off + 8, 0x7FFFFFF0)
    path = tmp_path / "c.pcap"
    path.write_bytes(bytes(data))
    got, err, cap = read_all(str(path))
    assert len(got) == 1
    assert str(err) == (
        f"c.pcap: corrupt record 2 at byte {off} "
        "(captured length 2147483632 exceeds the limit 262144)"
    )
    assert cap.stats()["errors.corrupt"] == 1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b, at: struct.pack_into("<I", b, at + 4, 13), "block total length 13"),
        (lambda b, at: struct.pack_into("<I", b, at + 8, 9), "interface 9 has no description"),
        (lambda b, at: struct.pack_into("<I", b, at + 20, 5000), "captured length 5000 overruns"),
    ],
)
def test_corrupt_pcapng_blocks(tmp_path: Path, mutate: object, message: str) -> None:
    b = PcapngBuilder().shb()
    b.idb(1)
    b.epb(0, 1, b"first")
    at = len(b.out)
    b.epb(0, 2, b"second")
    data = bytearray(b.bytes())
    mutate(data, at)  # type: ignore[operator]
    path = tmp_path / "c.pcapng"
    path.write_bytes(bytes(data))
    got, err, _ = read_all(str(path))
    assert [p.data for p in got] == [b"first"]
    assert err is not None
    assert f"c.pcapng: corrupt block 4 at byte {at} (" in str(err)
    assert message in str(err)


def test_not_a_capture_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello world, not a capture")
    got, err, _ = read_all(str(path))
    assert got == []
    assert str(err) == (
        "notes.txt: unknown file header at byte 0 (not a pcap or pcapng file (magic 68 65 6c 6c))"
    )
    path.write_bytes(b"")
    _, err, _ = read_all(str(path))
    assert str(err) == "notes.txt: empty file header at byte 0 (no pcap or pcapng header)"


def test_missing_file_fails_on_open(tmp_path: Path) -> None:
    from otus._capture_pcap.capturer import PcapCapturer
    from otus._capture_pcap.options import PcapOptions
    from otus.errors import CaptureError

    cap = PcapCapturer(PcapOptions(path=str(tmp_path / "nope.pcap")))
    with pytest.raises(CaptureError, match=r"nope.pcap: cannot open capture file: No such file"):
        cap.open()
