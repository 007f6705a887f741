"""Reference counting of the C paths: inputs keep their counts, repeated batches do not grow
memory, and a short fuzz run passes under CPython's debug allocator and development mode."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from sip_builders import dgram
from test_sip_scan import CORPUS, call_mix

from otus.testing import need
from otus_parser_sip import SipOptions, _scan
from otus_parser_sip._message import Limits
from otus_parser_sip.parser import SipParser

HERE = Path(__file__).resolve().parent
LIMITS = Limits()


def _batch() -> tuple[Any, Any, list[Any]]:
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    fn = _scan.batch_parser()
    assert fn is not None
    parser = SipParser(SipOptions())
    payloads = call_mix(10) + [d for _, d in CORPUS]
    return fn, (parser._batch_cfg, parser._dialog_cfg), [dgram(p) for p in payloads]


def _direct(data: bytes) -> None:
    mh, ml = LIMITS.max_headers, LIMITS.max_header_line
    for datagram in (True, False):
        _scan.json_parser()(data, mh, ml, datagram, True)


def test_inputs_keep_their_reference_counts() -> None:
    fn, cfg, dgrams = _batch()
    corpus = [d for _, d in CORPUS]

    def rounds(n: int) -> None:
        for _ in range(n):
            i = 0
            while i < len(dgrams):
                i = fn(dgrams, i, [], *cfg)[0] + 1
            for data in corpus:
                _direct(data)

    rounds(1)  # parse_batch keeps one reference to the classes it saw; caches fill
    # (not True/False/small ints of cfg: their counts move with any Python code)
    bcfg, dcfg = cfg
    watched = [bcfg, dcfg, dgrams, bcfg[0], bcfg[1], bcfg[6], dcfg[1], dcfg[3], *dgrams, *corpus]
    watched += [d.payload for d in dgrams]
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    rounds(3)
    gc.collect()
    after = [sys.getrefcount(o) for o in watched]
    assert [(k, a - b) for k, (a, b) in enumerate(zip(after, before, strict=True)) if a != b] == []


def test_repeated_batches_do_not_grow_memory() -> None:
    fn, cfg, dgrams = _batch()

    def rounds(n: int) -> None:
        for _ in range(n):
            i = 0
            while i < len(dgrams):
                i = fn(dgrams, i, [], *cfg)[0] + 1
            for _, data in CORPUS[::4]:
                _direct(data)

    # the recycled record bytes (a bounded ring per kind) are let go around each measurement
    clear = sys.modules["otus_parser_sip._native._sip_fast"].bytes_pool_clear
    rounds(20)  # fill the string caches and interned labels
    gc.collect()
    tracemalloc.start()
    try:
        rounds(5)
        clear()
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        rounds(60)  # ~22,000 datagrams and ~7,000 direct calls
        clear()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # one leaked small object per datagram would be > 700 KB
    assert grown < 64 * 1024, grown


def test_fuzz_under_the_debug_allocator_and_dev_mode() -> None:
    need(_scan.fast_available() and _scan.available(), "the C extensions are not built")
    mods = [sys.modules[f"otus_parser_sip._native.{m}"] for m in ("_sip_fast", "_sip_native")]
    paths = [str(m.__file__) for m in mods]
    run = subprocess.run(
        [sys.executable, "-X", "dev", str(HERE / "sip_fuzz_driver.py"), *paths, "2", "9"],
        env={**os.environ, "PYTHONMALLOC": "debug"}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-6000:]
    assert "fuzz ok" in run.stdout


def test_media_table_keeps_no_references_and_frees_its_memory() -> None:
    """The C table holds a reference to each flow's strs while it keeps the flow and lets
    them go when the flow goes (removed, expired, evicted) or the table is freed; a table
    filled and emptied again leaves no memory behind."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    from otus_parser_sip.media import MediaFlow, MediaFlowRegistry, PyMediaFlowRegistry

    assert MediaFlowRegistry is not PyMediaFlowRegistry
    call_id, kind, media = "".join(["call", "-1"]), "".join(["r", "tp"]), "".join(["aud", "io"])
    base = [sys.getrefcount(o) for o in (call_id, kind, media)]

    def fill(reg: Any, n: int) -> None:
        for port in range(n):
            host = "h" * (port % 70)  # inline and heap addresses
            codecs = {str(port % 3): "x" * (port % 90)}  # inline and heap codecs
            reg.register(MediaFlow(host, port, kind, call_id, media, codecs, 10**20 + port))
        reg.end_call(call_id, 5)

    reg = MediaFlowRegistry(max_flows=500)
    fill(reg, 1000)  # 500 evicted
    counts = [sys.getrefcount(o) for o in (call_id, kind, media)]
    # the call's entry and its place in the ended ring; each of the 500 flows kept
    assert [c - b for c, b in zip(counts, base, strict=True)] == [2, 500, 500]
    assert reg.expire(5) == 500
    assert [sys.getrefcount(o) for o in (call_id, kind, media)] == base  # ring read, flows gone
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            fill(reg, 1000)
            reg.remove_call(call_id)
            reg.expire(10)
        for _ in range(5):  # tables made, filled and freed while traced
            other = MediaFlowRegistry(max_flows=2000)
            fill(other, 1000)
            del other
        del reg
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024
    assert [sys.getrefcount(o) for o in (call_id, kind, media)] == base
