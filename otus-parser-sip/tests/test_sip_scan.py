"""The C header indexer and the pure-Python scanner give identical records and statistics."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sip_builders import SDP, dgram, sip

from otus.testing import need
from otus_parser_sip import SipOptions, _scan
from otus_parser_sip.parser import SipParser

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_sip import call_mix

RFC4475 = Path(__file__).parent / "data" / "rfc4475"


def _corpus() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in sorted(RFC4475.glob("*.dat"))]
    out += [(f"mix{k}", m) for k, m in enumerate(call_mix(2))]
    out += [
        ("compact", sip(extra="v: SIP/2.0/TCP h;branch=z9hG4bKx\r\nl: 0\r\n")),
        ("folded", sip(extra="Subject: one\r\n two\r\n")),
        ("utf8", sip(extra="Subject: caf\u00e9\r\n")),
        ("latin1", sip().replace(b"Alice", b"Al\xefce")),
        ("ctl", sip(extra="X-A: a\x0bb \r\n")),
        ("lone_lf", sip(extra="X-A: a\nb\r\n")),
        ("ws_name", sip(extra="X-Odd  \t: v\r\n")),
        ("empty_value", sip(extra="X-Empty:\r\n")),
        ("no_colon", sip(extra="garbage line\r\n")),
        ("colon_first", sip(extra=": nothing\r\n")),
        ("body", sip(body=SDP)),
        ("start_only", b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
        ("binary", b"\x00\x01\x02\xff garbage\r\n\r\n"),
        ("long_line", sip(extra="X-Long: " + "a" * 9000 + "\r\n")),
        ("many", sip(extra="".join(f"X-{k}: {k}\r\n" for k in range(300)))),
    ]
    rng = random.Random(4475)
    base = sip(body=SDP)
    for k in range(200):
        b = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.choice(b'\r\n\t :;,<>"\x00\x80Zz')
        out.append((f"mutant{k}", bytes(b)))
    return out


CORPUS = _corpus()


def _records(data: bytes, native: bool) -> Iterator[Any]:
    _scan.set_enabled(native)
    try:
        p = SipParser(SipOptions(report_errors=True))
        recs = p.parse([dgram(data)])
        yield [(r.payload, r.labels, bytes(r.raw_payload)) for r in recs]
        yield p.stats()
    finally:
        _scan.set_enabled(True)


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[n for n, _ in CORPUS])
def test_c_and_python_paths_agree(name: str, data: bytes) -> None:
    need(_scan.available(), "the otus_parser_sip C extension is not built")
    assert list(_records(data, True)) == list(_records(data, False))


def test_fast_path_is_taken_and_declines_what_it_cannot_do() -> None:
    need(_scan.available(), "the otus_parser_sip C extension is not built")
    plain = sip(extra="i: dup@x\r\nX-Custom : v \r\n")
    hend = plain.find(b"\r\n\r\n")
    got = _scan.index_headers(plain, hend, 256, 8192)
    assert got is not None
    start, index, by = got
    assert start == "INVITE sip:bob@example.com SIP/2.0"
    assert ["X-Custom", "v"] in index
    assert by["call-id"] == ["abc123@192.0.2.10", "dup@x"]
    assert by["x-custom"] == ["v"]
    for odd in (sip(extra="S: a\r\n b\r\n"), sip().replace(b"Alice", b"Al\xc3\xafce")):
        assert _scan.index_headers(odd, odd.find(b"\r\n\r\n"), 256, 8192) is None
    many = sip(extra="X: 1\r\n" * 10)
    assert _scan.index_headers(many, many.find(b"\r\n\r\n"), 5, 8192) is None
