"""Where captures come from: gzip files, stdin, loops, progress, the plugin registration."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from otus._capture_pcap.options import PcapOptions

from .pcapfiles import PcapngBuilder, Pkt, frames, pcap_file, read_all, read_ok

T0 = 1_650_000_000_000_000_000


def sample(n: int = 200) -> list[Pkt]:
    return [Pkt(T0 + i * 1_000_000, d) for i, d in enumerate(frames(n, seed=2))]


def test_gzip_pcap_and_pcapng(tmp_path: Path) -> None:
    pkts = sample()
    b = PcapngBuilder().shb()
    b.idb(1, tsresol=9)
    for p in pkts:
        b.epb(0, p.ts_ns, p.data)
    for name, raw in [("a.pcap.gz", pcap_file(pkts, nano=True)), ("b.pcapng.gz", b.bytes())]:
        path = tmp_path / name
        path.write_bytes(gzip.compress(raw))
        got, err, cap = read_all(str(path), chunk_size=4096)
        assert err is None
        assert [p.key() for p in got] == [p.key() for p in pkts]
        assert cap.progress() == (path.stat().st_size, path.stat().st_size)


def test_truncated_gzip_reports_uncompressed_offset(tmp_path: Path) -> None:
    pkts = sample()
    path = tmp_path / "cut.pcap.gz"
    raw = pcap_file(pkts, nano=True)
    path.write_bytes(gzip.compress(raw)[:-2000])
    got, err, _ = read_all(str(path))
    assert err is not None
    assert "cut.pcap.gz: " in str(err)
    assert len(got) < len(pkts)
    assert [p.key() for p in got] == [p.key() for p in pkts[: len(got)]]


def test_stdin(tmp_path: Path) -> None:
    pkts = sample()
    path = tmp_path / "in.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    script = (
        "from otus._capture_pcap.capturer import PcapCapturer\n"
        "from otus._capture_pcap.options import PcapOptions\n"
        "import hashlib\n"
        "from otus.capture import PACKET_DESC\n"
        "c = PcapCapturer(PcapOptions(path='-')); c.open(); h = hashlib.sha256(); n = 0\n"
        "for b in c.batches():\n"
        "    for i in range(b.count):\n"
        "        ts, off, cap, *_ = PACKET_DESC.unpack_from(b.descs, i * 32)\n"
        "        h.update(ts.to_bytes(8, 'little') + bytes(b.data[off:off + cap])); n += 1\n"
        "    b.release()\n"
        "print(n, h.hexdigest(), c.progress())\n"
    )
    import hashlib

    want = hashlib.sha256()
    for p in pkts:
        want.update(p.ts_ns.to_bytes(8, "little") + p.data)
    for data in (path.read_bytes(), gzip.compress(path.read_bytes())):
        res = subprocess.run(
            [sys.executable, "-c", script], input=data, capture_output=True, check=True
        )
        n, digest, progress = res.stdout.decode().split(" ", 2)
        assert (int(n), digest) == (len(pkts), want.hexdigest())
        assert progress.strip() == f"({len(data)}, None)"


def test_loop_repeats_the_file(tmp_path: Path) -> None:
    pkts = sample(50)
    path = tmp_path / "l.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    got, err, cap = read_all(str(path), loop=2)
    assert err is None
    assert [p.key() for p in got] == [p.key() for p in pkts] * 3
    size = path.stat().st_size
    assert cap.stats()["passes"] == 3
    assert cap.stats()["packets"] == 150
    assert cap.progress() == (3 * size, 3 * size)


def test_loop_forever_until_stopped(tmp_path: Path) -> None:
    from otus._capture_pcap.capturer import PcapCapturer

    path = tmp_path / "f.pcap"
    path.write_bytes(pcap_file(sample(10), nano=True))
    cap = PcapCapturer(PcapOptions(path=str(path), loop=-1))
    cap.open()
    seen = 0
    for batch in cap.batches():
        seen += batch.count
        batch.release()
        if seen >= 100:
            cap.stop()
    cap.close()
    assert seen == 100
    assert cap.stats()["passes"] == 10


def test_options_are_strict() -> None:
    with pytest.raises(ValidationError, match="loop needs a file"):
        PcapOptions(path="-", loop=1)
    with pytest.raises(ValidationError, match="Extra inputs"):
        PcapOptions.model_validate({"path": "x", "sped": 2})
    assert PcapOptions.model_validate({"path": "x", "batch_bytes": "1MiB"}).batch_bytes == 2**20


def test_registered_through_the_plugin_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="otus.plugins") if e.name == "pcap"]
    (spec,) = ep.load().otus_capturers()
    assert spec.name == "pcap"
    assert spec.options_model is PcapOptions


def test_plugin_factory_builds_a_working_capturer(tmp_path: Path) -> None:
    from otus._capture_pcap.plugin import otus_capturers
    from otus.context import PluginContext

    path = tmp_path / "p.pcap"
    pkts = sample(5)
    path.write_bytes(pcap_file(pkts, nano=True))
    (spec,) = otus_capturers()
    cap = spec.factory(PcapOptions(path=str(path)), PluginContext())
    cap.open()
    assert sum(b.count for b in cap.batches()) == 5
    cap.close()
    assert read_ok(str(path)) == read_ok(str(path))
