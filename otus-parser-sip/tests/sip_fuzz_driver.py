"""Bounded fuzz of the SIP C paths, run by ``test_sip_sanitizers.py`` in a subprocess.

``python sip_fuzz_driver.py FAST_SO NATIVE_SO SECONDS SEED`` loads the sanitized builds of
``_sip_fast`` and ``_sip_native`` in place of the installed ones, feeds the parity corpora and
then random and mutated datagrams and stream chunks through ``parse_batch`` (via
``SipParser.parse``), ``parse_json`` and the header indexer, and prints
``fuzz ok`` with the counts. A sanitizer report aborts the process (non-zero exit).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "bench"))

from otus.testing.sanitizers import load_extension  # noqa: E402


def _corpus() -> list[bytes]:
    """The parity corpora of the other tests (RFC 4475, shapes, mutants, SDP bodies)."""
    import test_sip_batch
    import test_sip_json
    import test_sip_scan
    import test_sip_sdp
    from bench_sip import call_mix
    from sip_builders import sip
    from sip_shapes import ACCEPTED, TRICKY

    out = [d for _, d in test_sip_scan.CORPUS]
    out += [d for _, d in ACCEPTED + TRICKY]
    out += [d for _, d in test_sip_json.ESCAPES + test_sip_json.DECLINED]
    for _, body, ctype in test_sip_sdp.DESCRIBED + test_sip_sdp.DECLINED:
        out.append(sip(body=body, content_type=ctype))
        out.append(sip("SIP/2.0 200 OK", to_tag="t", body=body, content_type=ctype))
    out += test_sip_batch.ODD + test_sip_batch._traffic(1)
    out += call_mix(1)
    return out


#: Bytes that steer the parsers into their branches.
SPECIAL = b'\r\n\t :;,<>"@[]=/\\?*.\x00\x7f\x80\xff0123456789'
TOKENS = [
    b"\r\n", b"\r\n\r\n", b"Content-Length: ", b"Content-Type: application/sdp\r\n", b"Via: ",
    b"SIP/2.0/UDP ", b";branch=z9hG4bK", b";tag=", b"<sip:", b"sip:", b"sips:", b"tel:", b"[::1]",
    b":5060", b"m=audio ", b"c=IN IP4 ", b"c=IN IP6 ", b"a=rtpmap:", b"a=rtcp:", b"a=rtcp-mux",
    b"RTP/AVP ", b"v=0\r\n", b"\"", b"\\", b"CSeq: 1 INVITE\r\n", b"Call-ID: x\r\n", b"l: ",
    b"99999999999999999999", b"-1", b"4294967296", b"/8000/2", b", ", b"SIP/2.0 200 OK\r\n",
]  # fmt: skip


def mutate(rng: random.Random, base: bytes, pool: list[bytes]) -> bytes:
    """One random structural or byte-level mutation (sometimes several)."""
    b = bytearray(base)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        op = rng.randrange(9)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.choice(SPECIAL)
        elif op == 1:
            b[pos:pos] = rng.choice(TOKENS)
        elif op == 2:
            del b[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            b = b[:pos]
        elif op == 4 and b:
            s = rng.randrange(len(b))
            b[pos:pos] = b[s : s + rng.randint(1, 64)]
        elif op == 5:
            other = rng.choice(pool)
            b = b[:pos] + other[rng.randrange(len(other) + 1) :]
        elif op == 6 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 7:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 8:
            b[pos:pos] = rng.choice(TOKENS) * rng.randint(2, 40)
    return bytes(b)


def _payload(rng: random.Random, data: bytes) -> Any:
    """``data`` as bytes, a memoryview of it, of a slice of a larger buffer, or a bytearray."""
    k = rng.randrange(5)
    if k == 0:
        return data
    if k == 1:
        return memoryview(data)
    if k == 2:
        return memoryview(b"JUNK" + data + b"JUNK")[4 : 4 + len(data)]
    if k == 3:
        return bytearray(data)
    return memoryview(bytearray(data))


def hostile_datagrams(
    datagram: type, fn: Any, cfg: tuple[Any, ...], dcfg: tuple[Any, ...], data: bytes
) -> None:
    """A Datagram subclass whose ``payload`` getter empties the list parse_batch walks."""

    class Shrinking(datagram):  # type: ignore[misc,valid-type]
        __slots__ = ("_data", "victim")

        @property
        def payload(self) -> bytes:
            self.victim.clear()
            return bytes(self._data)

        @payload.setter
        def payload(self, value: bytes) -> None:
            self._data = value

    dgrams: list[Any] = []
    for k in range(8):
        d = Shrinking(k, "192.0.2.1", "192.0.2.2", 5060, 5060, 17, data)
        d.victim = dgrams
        dgrams.append(d)
    d = None
    fn(dgrams, 0, [], cfg, dcfg)


#: Addresses for the registry fuzz: IPv4, IPv6 up to its 45 characters, a long host name
#: (past the C table's inline room), non-ASCII.
_ADDRS = ("10.0.0.1", "10.0.0.2", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
          "media." + "x" * 60 + ".example", "h\u00f4te", "")  # fmt: skip


def registry_ops(rng: random.Random, c_reg: Any, py_reg: Any) -> None:
    """A random run of registry operations on the C table and the pure-Python registry, which
    must answer the same and hold the same flows."""
    from otus_parser_sip.media import MediaFlow

    for _ in range(rng.randrange(1, 60)):
        op = rng.random()
        cid = f"c{rng.randrange(12)}"
        ip, port = rng.choice(_ADDRS), rng.randrange(6)
        t = rng.choice((0, rng.randrange(10**6), 2**63 + rng.randrange(10), -(2**64)))
        if op < 0.5:
            codecs = {str(k): rng.choice(("PCMU", "telephone-event" * rng.randrange(8)))
                      for k in range(rng.randrange(5))}  # fmt: skip
            kind, media = rng.choice(("rtp", "rtcp", "rtp+rtcp")), rng.choice(("audio", "v"))
            for reg in (c_reg, py_reg):
                reg.register(MediaFlow(ip, port, kind, cid, media, dict(codecs), t))
        elif op < 0.65:
            for reg in (c_reg, py_reg):
                reg.end_call(cid, t)
        elif op < 0.75:
            for reg in (c_reg, py_reg):
                reg.remove_call(cid)
        elif op < 0.85:
            assert c_reg.expire(t) == py_reg.expire(t)
        elif op < 0.95:
            assert c_reg.lookup(ip, port) == py_reg.lookup(ip, port)
            assert sorted(c_reg.flows_of(cid), key=repr) == sorted(py_reg.flows_of(cid), key=repr)
        else:
            c_reg.max_flows = py_reg.max_flows = rng.randrange(1, 8)
    assert c_reg.flows() == py_reg.flows()
    assert c_reg.ended() == py_reg.ended()
    assert c_reg.stats() == py_reg.stats()
    assert {k: sorted(v) for k, v in c_reg.calls().items()} == {
        k: sorted(v) for k, v in py_reg.calls().items()
    }


#: Values a call's attribute may be set to from Python: what a slot of the C dialog table
#: holds, and what it cannot (past 62 bits, not an int or str, too long, an unknown state).
_VALUES = (0, 7, 10**9, 2**62, 2**62 + 1, 2**63 + 5, -(2**70), 2**130, True, False, None,
           "", "alice", "x" * 41, "y" * 57, "h\u00f4te", "confirmed", "terminated", "odd",
           1.5)  # fmt: skip
_FIELDS = ("answer_ns", "call_id", "callee", "caller", "cancel_seen", "end_ns", "final_status",
           "from_tag", "invite_ns", "last_ns", "ring_ns", "state", "to_tag")  # fmt: skip


def _view(d: Any) -> Any:
    return None if d is None else [(f, repr(getattr(d, f))) for f in _FIELDS]


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or the name of what it raised (values set from Python may not add up)."""
    try:
        return fn(*args)
    except (TypeError, ValueError) as e:
        return type(e).__name__


def dialog_ops(rng: random.Random, c_tab: Any, py_tab: Any, held: list[Any]) -> None:
    """A random run of dialog table operations on the C table (``native_table``) and the
    pure-Python ``DialogTable``, including values set from Python that a slot cannot hold and
    handles kept across eviction and expiry: both must answer and hold the same."""
    for _ in range(rng.randrange(1, 40)):
        op = rng.random()
        cid = rng.choice((f"c{rng.randrange(8)}", "k" * rng.choice((80, 81, 300)), "\u00e9t\u00e9"))
        t = rng.choice((rng.randrange(10**12), 2**62 + rng.randrange(3), 2**63 + 5))
        if op < 0.55:
            status = rng.choice((0, 0, 0, 100, 180, 183, 200, 302, 407, 486, 487, 603))
            labels = {
                "sip.call_id": cid,
                "sip.method": rng.choice(("INVITE", "BYE", "CANCEL", "ACK")),
                "sip.cseq_method": rng.choice(("INVITE", "BYE")),
                "sip.from_uri": rng.choice(("sip:a@h", "sip:" + "u" * 60 + "@h")),
                "sip.to_uri": "sip:b@h",
            }
            for key, vals in (
                ("sip.from_tag", ("f1", "t" * 45)),
                ("sip.to_tag", ("", "b1")),
                ("sip.from_user", ("alice", "\u00e4")),
                ("sip.to_user", ("bob",)),
                ("sip.cseq", ("1 INVITE", "2 INVITE", "4294967295 INVITE")),
                ("sip.via_branch", ("z9hG4bKa", "z9hG4bKb", "")),
            ):
                if rng.random() < 0.6:
                    labels[key] = rng.choice(vals)
            got = [_try(tab.update, dict(labels), status, t) for tab in (c_tab, py_tab)]
            if isinstance(got[0], str) or isinstance(got[1], str):
                assert got[0] == got[1]
                continue
            assert _view(got[0]) == _view(got[1])
            if got[0] is not None:
                outs = [_try(d.labels) for d in got]
                assert outs[0] == outs[1]
                if rng.random() < 0.3:
                    held.append(tuple(got))
        elif op < 0.75:
            pair = (c_tab.get(cid), py_tab.get(cid))
            assert _view(pair[0]) == _view(pair[1])
            if pair[0] is not None:
                f, v = rng.choice(_FIELDS[:1] + _FIELDS[2:]), rng.choice(_VALUES)
                for d in pair:
                    setattr(d, f, v)
                held.append(pair)
        elif op < 0.85:
            dead = [_try(tab.expire, t) for tab in (c_tab, py_tab)]
            if isinstance(dead[0], str) or isinstance(dead[1], str):
                assert dead[0] == dead[1]
            else:
                assert [_view(d) for d in dead[0]] == [_view(d) for d in dead[1]]
        else:
            assert [_view(d) for d in c_tab.ended] == [_view(d) for d in py_tab.ended]
            c_tab.ended.clear()
            py_tab.ended.clear()
    del held[: max(0, len(held) - 20)]
    for c, py in held:  # live or gone, a handle reads what the Python object holds
        assert _view(c) == _view(py)
    assert [(k, _view(d)) for k, d in c_tab.calls.items()] == [
        (k, _view(d)) for k, d in py_tab.calls.items()
    ]
    assert c_tab.stats() == py_tab.stats()


def main() -> None:
    fast_so, native_so, seconds, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    load_extension("otus_parser_sip._native._sip_fast", fast_so)
    load_extension("otus_parser_sip._native._sip_native", native_so)
    from otus import Datagram, StreamChunk
    from otus_parser_sip import SipOptions, _scan
    from otus_parser_sip._message import Limits
    from otus_parser_sip.parser import SipParser

    assert _scan.fast_available()
    assert _scan.available()
    assert sys.modules["otus_parser_sip._native._sip_fast"].__file__ == fast_so
    rng = random.Random(int(seed))
    corpus = _corpus()
    options = [
        SipOptions(report_errors=True),
        SipOptions(max_dialogs=3, max_media_flows=5, max_message_size=65535),
        SipOptions(include_dialog_labels=False, parse_sdp=False, max_headers=8),
    ]
    parsers = [SipParser(o) for o in options]
    json_fn = _scan.json_parser()
    limits = [Limits(), Limits(max_headers=4, max_header_line=40)]
    counts = dict.fromkeys(("messages", "batches", "json", "json_answered", "scan"), 0)
    counts["stream"] = 0

    def direct(data: bytes) -> None:
        lim = rng.choice(limits)
        for datagram in (True, False):
            res = json_fn(data, lim.max_headers, lim.max_header_line, datagram, rng.random() < 0.8)
            counts["json"] += 1
            counts["json_answered"] += res is not None
        hend = data.find(b"\r\n\r\n")
        if hend >= 0:
            for h in {hend, rng.randrange(hend + 1)}:
                _scan.index_headers(data, h, lim.max_headers, lim.max_header_line)
                counts["scan"] += 1

    def batch(payloads: list[bytes]) -> None:
        p = rng.choice(parsers)
        dg = [
            Datagram(1_000_000 * k, "192.0.2.1", "192.0.2.2", 5060, 5060, 17, _payload(rng, d))
            for k, d in enumerate(payloads)
        ]
        p.parse(dg)
        counts["batches"] += 1
        counts["messages"] += len(dg)
        if rng.random() < 0.2:
            chunks, pos, joined = [], 0, b"".join(payloads)
            while pos < len(joined):
                n = rng.randint(1, 2000)
                chunks.append(
                    StreamChunk(1, "192.0.2.1", "192.0.2.2", 5060, 5060, joined[pos : pos + n])
                )
                pos += n
            p.parse_stream(chunks)
            counts["stream"] += 1
        if rng.random() < 0.05:
            p.tick(10**12 * rng.randint(1, 100))

    from otus_parser_sip.media import MediaFlowRegistry, PyMediaFlowRegistry

    assert MediaFlowRegistry is not PyMediaFlowRegistry  # the C table
    registries = [(MediaFlowRegistry(5), PyMediaFlowRegistry(5))]
    counts["registry"] = 0
    from otus_parser_sip._dialogs import DialogTable, native_table

    def table_pair(n: int) -> tuple[Any, Any]:
        limits = (n, 60 * 10**9, 120 * 10**9, 30 * 10**9)
        return native_table(*limits), DialogTable(*limits)

    tables = [table_pair(4)]
    held: list[Any] = []
    counts["dialogs"] = 0
    step: Callable[[list[bytes]], None] = batch
    batch_fn = _scan.batch_parser()
    assert batch_fn is not None
    from bench_sip import call_mix

    hostile_datagrams(
        Datagram, batch_fn, parsers[0]._batch_cfg, parsers[0]._dialog_cfg, call_mix(1)[0]
    )
    for data in corpus:
        direct(data)
    for k in range(0, len(corpus), 37):
        step(corpus[k : k + 37])
    pool = list(corpus)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        group = []
        for _ in range(rng.choice((1, 4, 16, 64))):
            r = rng.random()
            if r < 0.05:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
            elif r < 0.1:
                data = bytes(rng.choice(SPECIAL) for _ in range(rng.randrange(200)))
            else:
                data = mutate(rng, rng.choice(pool), pool)
            group.append(data)
        try:
            for data in group:
                direct(data)
            step(group)
            if rng.random() < 0.3:
                if rng.random() < 0.05:  # a fresh pair now and then (frees the old C table)
                    n = rng.randrange(1, 2000)
                    registries[0] = (MediaFlowRegistry(n), PyMediaFlowRegistry(n))
                registry_ops(rng, *registries[0])
                counts["registry"] += 1
            if rng.random() < 0.3:
                if rng.random() < 0.05:  # a fresh pair now and then (frees the old C table)
                    tables[0] = table_pair(rng.randrange(1, 50))
                dialog_ops(rng, *tables[0], held)
                counts["dialogs"] += 1
        except Exception:
            print("failing group:", repr(group), file=sys.stderr)
            raise
        if rng.random() < 0.1:
            pool.append(group[0])
            if len(pool) > 4000:
                pool.pop(len(corpus) + rng.randrange(len(pool) - len(corpus)))
    print("fuzz ok", counts)


if __name__ == "__main__":
    main()
