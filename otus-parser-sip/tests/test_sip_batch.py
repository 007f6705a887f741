"""The C batch path (``sip_batch.c``) gives the same records, statistics, dialogs and media
flows as the per-message C path and the pure-Python path, whatever it hands back to Python."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sip_builders import SDP, dgram, sip

from otus import Datagram, Record, StreamChunk
from otus.testing import need
from otus_parser_sip import SipOptions, _scan
from otus_parser_sip import parser as parser_module
from otus_parser_sip._dialogs import Dialog
from otus_parser_sip.media import PyMediaFlowRegistry
from otus_parser_sip.parser import SipParser

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_sip import call_mix


class OtherDatagram(Datagram):
    """A subclass: the batch path reads its fields as attributes instead of slots."""

    __slots__ = ("extra",)


def _call(cid: str, *, cancel: bool = False, fail: int = 0, ftag: str = "f1") -> list[bytes]:
    """An INVITE transaction ending as asked (answered and hung up, cancelled, or failed)."""
    inv = sip(call_id=cid, body=SDP, from_tag=ftag)
    msgs = [inv, sip("SIP/2.0 100 Trying", call_id=cid)]
    msgs.append(sip("SIP/2.0 183 Session Progress", call_id=cid, to_tag="t"))
    if cancel:
        msgs.append(sip(call_id=cid, cseq="1 CANCEL", start="CANCEL sip:bob@example.com SIP/2.0"))
        msgs.append(sip("SIP/2.0 487 Request Terminated", call_id=cid, to_tag="t"))
    elif fail:
        msgs.append(sip(f"SIP/2.0 {fail} Nope", call_id=cid, to_tag="t"))
    else:
        msgs.append(sip("SIP/2.0 200 OK", call_id=cid, to_tag="t", body=SDP))
        msgs.append(sip("ACK sip:bob@x SIP/2.0", call_id=cid, cseq="1 ACK", to_tag="t"))
        msgs.append(sip("BYE sip:bob@x SIP/2.0", call_id=cid, cseq="2 BYE", to_tag="t"))
        msgs.append(sip("SIP/2.0 200 OK", call_id=cid, cseq="2 BYE", to_tag="t"))
    return msgs


def _retried(cid: str, challenge: str) -> list[bytes]:
    """An INVITE challenged or redirected, then sent again (same Call-ID, higher CSeq) and
    answered by a forked call's second branch; put on hold the old way (``c=0.0.0.0``)."""
    hold = SDP.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0")
    return [
        sip(call_id=cid, body=SDP),
        sip(f"SIP/2.0 {challenge}", call_id=cid, to_tag="x"),
        sip("ACK sip:bob@x SIP/2.0", call_id=cid, cseq="1 ACK", to_tag="x"),
        sip(call_id=cid, cseq="2 INVITE", body=SDP),
        sip("SIP/2.0 180 Ringing", call_id=cid, cseq="2 INVITE", to_tag="fork1"),
        sip("SIP/2.0 180 Ringing", call_id=cid, cseq="2 INVITE", to_tag="fork2"),
        sip("SIP/2.0 200 OK", call_id=cid, cseq="2 INVITE", to_tag="fork2", body=SDP),
        sip(call_id=cid, cseq="3 INVITE", to_tag="fork2", body=hold),
    ]


ODD = [
    b"\r\n\r\n",  # keep-alives
    b"\r\n",
    b"",
    b"\x00\r",
    b"\r\n\r\n\r\n",  # not a keep-alive (too long), nothing after the CRLFs
    b"\x16\x03\x01\x00\x05hello",  # TLS
    b"\x15not tls but starts like it\r\n\r\n",
    b"\r\n\r\n" + sip(call_id="crlf-first"),
    sip(call_id="trailing") + b"junk after the body",
    sip(call_id="multi", body=b"--b\r\n\r\nx\r\n--b--\r\n", content_type="multipart/mixed;b=b"),
    b"\x00\x01\x02\xff garbage\r\n\r\n",
    sip(call_id="big", extra="X-Big: " + "a" * 70000 + "\r\n"),
    sip("FOO sip:x SIP/2.0", call_id="foo", cseq="1 FOO"),
    sip("MESSAGE sip:x SIP/2.0", call_id="msg", cseq="1 MESSAGE"),
    sip(call_id="folded", extra="Subject: one\r\n two\r\n"),
    sip("SIP/2.0 603 Decline", call_id="nobody", to_tag="z"),
]


def _traffic(seed: int) -> list[bytes]:
    """Calls interleaved (each in its own order), registrations, pings and odd datagrams."""
    rng = random.Random(seed)
    flows: list[list[bytes]] = []
    mix = call_mix(12)
    flows += [mix[k : k + 13] for k in range(0, len(mix), 13)]
    flows += [_call(f"c{k}", cancel=k % 3 == 1, fail=486 if k % 3 == 2 else 0) for k in range(9)]
    flows += [_call("reused") + _call("reused", ftag="f2")]  # a new call reusing the Call-ID
    # the same INVITE again after its call ended (a retransmission): no new call
    resent = _call("resent", fail=486)
    flows += [resent[:1] + resent + resent[:1]]
    # a proxy hunting: the same INVITE on a new Via branch after the first phone's 486
    hunt = [sip(call_id="hunt", via_branch="z9hG4bKa"),
            sip("SIP/2.0 486 Busy", call_id="hunt", to_tag="a", via_branch="z9hG4bKa"),
            sip(call_id="hunt", via_branch="z9hG4bKb"),
            sip("SIP/2.0 200 OK", call_id="hunt", to_tag="b", via_branch="z9hG4bKb")]  # fmt: skip
    flows += [hunt]
    # a proxy ringing two phones at once: one is busy, the other answers
    fork = [sip(call_id="fork", via_branch="z9hG4bKa"), sip(call_id="fork", via_branch="z9hG4bKb"),
            sip("SIP/2.0 486 Busy", call_id="fork", to_tag="a", via_branch="z9hG4bKa"),
            sip("SIP/2.0 486 Busy", call_id="fork", to_tag="a", via_branch="z9hG4bKa"),
            sip("SIP/2.0 200 OK", call_id="fork", to_tag="b", via_branch="z9hG4bKb")]  # fmt: skip
    flows += [fork]
    flows += [_retried("auth", "407 Proxy Authentication Required"), _retried("moved", "302 M")]
    flows += [_retried("unretried", "401 Unauthorized")[:3]]
    flows += [[m] for m in ODD]
    out: list[bytes] = []
    while flows:
        f = rng.choice(flows)
        out.append(f.pop(0))
        if not f:
            flows.remove(f)
    return out


def _datagrams(payloads: list[bytes], seed: int) -> list[Datagram]:
    rng = random.Random(seed)
    out: list[Datagram] = []
    for k, p in enumerate(payloads):
        ts = 1_000_000_000 + k * 7_000_000
        kind = rng.random()
        if kind < 0.1:
            out.append(OtherDatagram(ts, "192.0.2.10", "192.0.2.20", 5060, 5060, 17, p))
        elif kind < 0.3:
            out.append(Datagram(ts, "192.0.2.10", "192.0.2.20", 5060, 5062, 17, p))  # bytes
        else:
            out.append(Datagram(ts, "192.0.2.11", "192.0.2.20", 5070, 5060, 17, memoryview(p)))
    return out


def _chunks(payloads: list[bytes], seed: int) -> list[StreamChunk]:
    """The messages as two TCP streams (a proxy and a phone), cut at random points: chunks
    with several messages, messages over several chunks; the odd ones make the framer
    resynchronise."""
    rng = random.Random(seed)
    streams: list[bytearray] = [bytearray(), bytearray()]
    for k, p in enumerate(payloads):
        streams[k % 2] += p
    out: list[StreamChunk] = []
    ts = 2_000_000_000
    pos = [0, 0]
    while pos[0] < len(streams[0]) or pos[1] < len(streams[1]):
        k = rng.randrange(2)
        if pos[k] >= len(streams[k]):
            continue
        n = rng.choice((40, 300, 1500, 4000))
        data = bytes(streams[k][pos[k] : pos[k] + n])
        pos[k] += n
        ts += 3_000_000
        out.append(StreamChunk(ts, f"192.0.2.{30 + k}", "192.0.2.20", 40000 + k, 5060, data))
    return out


def _run(
    mode: str, seed: int, options: SipOptions, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Records, statistics, dialogs and media flows of one parser over the traffic of ``seed``,
    as datagrams in batches of random sizes and then as TCP streams; ``mode``: ``batch``,
    ``message`` (per-message C), ``python`` (with the pure-Python media registry too) or
    ``batch_pyreg`` (the batch path handing its media work to the pure-Python registry)."""
    _scan.set_enabled(mode != "python")
    with monkeypatch.context() as m:
        if mode == "message":
            m.setitem(_scan._batch, "fn", None)
        if mode in ("python", "batch_pyreg"):
            m.setattr(parser_module, "MediaFlowRegistry", PyMediaFlowRegistry)
        try:
            parser = SipParser(options)
            dgrams = _datagrams(_traffic(seed), seed)
            rng = random.Random(seed)
            records = []
            while dgrams:
                n = rng.choice((1, 2, 5, 17, 64))
                records += parser.parse(dgrams[:n])
                del dgrams[:n]
            chunks = _chunks(_traffic(seed + 100), seed)
            while chunks:
                n = rng.choice((1, 3, 8))
                records += parser.parse_stream(chunks[:n])
                del chunks[:n]
        finally:
            _scan.set_enabled(True)
    for r in records:
        yield (
            r.ts_ns, r.src_ip, r.dst_ip, r.src_port, r.dst_port, r.protocol, r.payload_type,
            type(r.raw_payload), r.raw_payload, r.serialized_payload(), _labels_json(r),
            r.task_id, r.agent_id, r.pipeline_id, list(r.labels.items()), r.payload,
        )  # fmt: skip
    yield list(parser.stats().items())
    yield [d.as_dict() for d in parser.dialogs.calls.values()]
    yield [_slots(d) for d in parser.dialogs.calls.values()]
    assert parser.media is not None
    yield parser.media.flows()
    yield {k: sorted(v) for k, v in parser.media.calls().items()}
    yield parser.media.ended()


def _slots(d: Dialog) -> list[tuple[str, Any, type]]:
    """Every public slot of a dialog with its value's type (a dialog the C path created or
    updated holds what ``Dialog.__init__`` and ``DialogTable.update`` store, ``0`` and
    ``False`` included; the C table's handles read the same attributes)."""
    return [(s, getattr(d, s), type(getattr(d, s))) for s in Dialog.__slots__]


def _labels_json(r: Record) -> bytes:
    """The labels as a reporter copies them: what the parser serialised (the batch path) or
    the dict serialised (the other paths); the same bytes either way."""
    serialized = r.serialized_labels()
    return serialized if serialized is not None else orjson.dumps(r.labels)


OPTIONS = {
    "default": SipOptions(report_errors=True),
    "small_tables": SipOptions(max_dialogs=3, max_media_flows=5, max_message_size=65535),
    "no_dialog_labels_no_sdp": SipOptions(include_dialog_labels=False, parse_sdp=False),
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", OPTIONS)
def test_batch_path_equals_message_and_python_paths(
    name: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    options = OPTIONS[name]
    batch = list(_run("batch", seed, options, monkeypatch))
    assert batch == list(_run("message", seed, options, monkeypatch))
    assert batch == list(_run("python", seed, options, monkeypatch))
    assert batch == list(_run("batch_pyreg", seed, options, monkeypatch))
    assert len(batch) > 150


@pytest.mark.parametrize("registry", ["c", "python"])
def test_batch_path_handles_the_bench_mix_alone(
    registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common case stays in C: one call for a batch of the bench mix, every record built
    and every dialog updated there, and the media registry's work done on the C table; only
    a pure-Python registry gets its work handed back."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    fn = _scan.batch_parser()
    assert fn is not None
    if registry == "python":
        monkeypatch.setattr(parser_module, "MediaFlowRegistry", PyMediaFlowRegistry)
    parser = SipParser(SipOptions())
    assert parser.media is not None
    dgrams = [
        Datagram(k, "10.0.0.1", "10.0.0.2", 5060, 5060, 17, memoryview(p))
        for k, p in enumerate(call_mix(10))
    ]
    out: list[Any] = []
    nxt, ops, counts, dcounts = fn(dgrams, 0, out, parser._batch_cfg, parser._dialog_cfg)
    assert nxt == len(dgrams) == len(out) == 130
    assert all(r.serialized_labels() is not None for r in out)  # labels handed as JSON
    # per call: the INVITE's and the 200's SDP registered, then the call ended at the BYE
    # (in the order the interleaved calls' messages come)
    sdp_or_bye = [r for r in out if _sdp_or_bye(r.labels)]
    ended = [r.labels.get("sip.method") == "BYE" for r in sdp_or_bye]
    assert (ended.count(False), ended.count(True)) == (20, 10)
    if registry == "python":
        assert ops[0::4] == ended
        assert ops[2::4] == [r.ts_ns for r in sdp_or_bye]
        assert ops[1::4] == [r.labels["sip.call_id"] for r in sdp_or_bye]
        parser._media_ops(ops)
    else:
        assert ops == []
    byes = [r for r in sdp_or_bye if r.labels.get("sip.method") == "BYE"]
    linger = parser._media_linger_ns
    assert parser.media.ended() == [(r.ts_ns + linger, r.labels["sip.call_id"]) for r in byes]
    assert parser.media.stats()["media.registered"] == len(parser.media) == 40  # RTP + RTCP
    assert dcounts == (10, 0, 10, 0, 10, 0, 0, 0, 0, 0, 0, 0)
    assert [d.state for d in parser.dialogs.calls.values()] == ["terminated"] * 10
    assert parser.dialogs.by_outcome == {"terminated": 10}
    acks = [r for r in out if r.labels.get("sip.method") == "ACK"]
    assert [r.labels["sip.call_state"] for r in acks] == ["confirmed"] * 10
    assert counts[:11] == (130, 60, 70, 0, 0, 20, 40, 0, 10, 0, 0)
    # (method index, count) pairs in the order the methods first come
    assert dict(zip(counts[11::2], counts[12::2], strict=True)) == {
        0: 10,
        1: 10,
        2: 10,
        4: 20,
        5: 10,
    }
    assert (out[0].task_id, out[0].agent_id, out[0].pipeline_id) == ("", "", 0)


def _sdp_or_bye(labels: dict[str, str]) -> bool:
    """The INVITE, its 200 (both with SDP in the bench mix) or the BYE request."""
    if "sip.status_code" in labels:
        return labels["sip.status_code"] == "200" and labels["sip.cseq_method"] == "INVITE"
    return labels["sip.method"] in ("INVITE", "BYE")


class TaggedRecord(Record):
    """A Record subclass: ``parse_batch`` calls it with keywords instead of writing slots."""

    __slots__ = ("tag",)


def test_batch_path_calls_a_record_class_it_does_not_know() -> None:
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    fn = _scan.batch_parser()
    assert fn is not None
    dgrams = _datagrams(call_mix(2), 7)
    plain: list[Any] = []
    parser = SipParser(SipOptions())
    fn(dgrams, 0, plain, parser._batch_cfg, parser._dialog_cfg)
    tagged: list[Any] = []
    parser = SipParser(SipOptions())
    fn(dgrams, 0, tagged, (TaggedRecord, *parser._batch_cfg[1:]), parser._dialog_cfg)
    assert len(tagged) == len(plain) == 26
    assert all(type(r) is TaggedRecord for r in tagged)
    fields = ("ts_ns", "src_ip", "dst_ip", "src_port", "dst_port", "protocol", "payload_type")
    fields += ("raw_payload", "labels", "task_id", "agent_id", "pipeline_id")
    for a, b in zip(plain, tagged, strict=True):
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert a.serialized_payload() == b.serialized_payload()
        assert a.payload == b.payload


def _dialog_view(parser: SipParser, records: list[Any]) -> list[Any]:
    assert parser.media is not None
    return [
        [list(r.labels.items()) for r in records],
        list(parser.stats().items()),
        [d.as_dict() for d in parser.dialogs.calls.values()],
        [_slots(d) for d in parser.dialogs.calls.values()],
        parser.media.flows(),
    ]


@pytest.mark.parametrize("ts_base", [0, 2**62 - 10**12, 2**63 + 5, -(10**12)])
def test_dialog_table_in_c_with_odd_timestamps(
    ts_base: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times that go backwards, or do not fit 64 bits (``sip_dialog.c`` leaves those datagrams
    to Python), give the dialogs, labels and setup histogram of the pure-Python path."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    rng = random.Random(ts_base & 0xFFFF)
    payloads = call_mix(6)
    stamps = [ts_base + rng.randrange(-(10**9), 40 * 10**9) for _ in payloads]
    views = []
    for enabled in (True, False):
        _scan.set_enabled(enabled)
        try:
            parser = SipParser(SipOptions(max_dialogs=4))
            dgrams = [
                Datagram(ts, "10.0.0.1", "10.0.0.2", 5060, 5060, 17, p)
                for ts, p in zip(stamps, payloads, strict=True)
            ]
            records = parser.parse(dgrams)
            parser.tick(ts_base + 35 * 10**9)
            views.append(_dialog_view(parser, records))
        finally:
            _scan.set_enabled(True)
    assert views[0] == views[1]
    assert dict(views[0][1])["dialogs.created"] == 6


def test_dialog_labels_copy_follows_changes_made_from_python() -> None:
    """The C path keeps a call's dialog labels as JSON and reuses them while they stay the same;
    a slot set from Python drops that copy, so the next message shows the change (and a time
    set beyond 64 bits sends the message to Python instead of being trusted)."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    s = 10**9
    invite = sip(to_tag=None)
    trying = sip("SIP/2.0 100 Trying")
    ringing = sip("SIP/2.0 180 Ringing", to_tag="t1")
    parser = SipParser(SipOptions())
    (r1,) = parser.parse([dgram(invite, 1 * s)])
    d = parser.dialogs.get("abc123@192.0.2.10")
    assert d is not None
    assert r1.labels["sip.caller"] == "alice"
    (r2,) = parser.parse([dgram(trying, 2 * s)])
    assert r2.labels["sip.caller"] == "alice"
    d.caller = "carol"
    (r3,) = parser.parse([dgram(trying, 3 * s)])
    assert (r3.labels["sip.caller"], r3.labels["sip.call_state"]) == ("carol", "trying")
    d.state = "early"
    d.invite_ns = 2**70
    (r4,) = parser.parse([dgram(ringing, 4 * s)])
    assert r4.labels["sip.call_state"] == "early"
    assert r4.labels["sip.ring_ms"] == str((4 * s - 2**70) // 10**6)
    assert r4.serialized_labels() is None  # the dialog's time is past 64 bits: Python did it
    d.invite_ns = 1 * s
    (r5,) = parser.parse([dgram(trying, 5 * s)])
    assert r5.serialized_labels() is not None
    assert r5.labels["sip.ring_ms"] == "3000"


def _top_via_message(via: str, call_id: str, ua: str, start: str) -> bytes:
    head = (
        f'{start}\r\nVia: {via}\r\nFrom: <sip:a"@h>;tag=f1\r\nTo: <tel:+49"1>;tag=t\r\n'
        f"Call-ID: {call_id}\r\nCSeq: 0042 INVITE\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
    )
    return head.encode()


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/udp h.example.com:5060;branch=z9",
        "SIP / 2.0 / tcp [2001:db8::1];received=x",
        'SIP/2.0/Ws h:0;branch="q;b"',
        "SIP/2.0/TLS h\\o:65535;rport",
        "SIP/2.0/UDP 10.0.0.1:99999;branch=b" + "x" * 40,
    ],
)
@pytest.mark.parametrize("start", ["INVITE sip:b@h SIP/2.0", 'SIP/2.0 183 Session "P"'])
def test_batch_labels_json_equals_labels_of(via: str, start: str) -> None:
    """The labels the batch path writes as JSON (labels_json in sip_json.c) are orjson.dumps of
    labels_of of the reference payload: escaping, the composed sip.via and sip.cseq values,
    the status code and the method after it, in labels_of's order."""
    from otus_parser_sip._message import Limits, parse_message
    from otus_parser_sip.parser import labels_of

    taken = 0
    for call_id, ua in (('c"1\\x@h', 'UA "1"\t2'), ("plain@h", "x")):
        data = _top_via_message(via, call_id, ua, start)
        _scan.set_enabled(False)
        try:
            ref = parse_message(data, Limits(), datagram=True).payload
        finally:
            _scan.set_enabled(True)
        parser = SipParser(SipOptions(include_dialog_labels=False))
        (rec,) = parser.parse([Datagram(1, "192.0.2.1", "192.0.2.2", 5060, 5060, 17, data)])
        assert ref is not None
        assert _labels_json(rec) == orjson.dumps(labels_of(ref)), (via, start, call_id)
        taken += rec.serialized_labels() is not None
    assert taken == 2  # the batch path wrote them


def test_recycled_record_bytes_are_never_changed_while_held() -> None:
    """The record bytes sip_fast.c recycles: a held record keeps its bytes through many
    batches; one whose record is gone is written again and hashes as a fresh copy would."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    msgs = [
        sip(
            f"OPTIONS sip:{'u' * (k % 700)}@x SIP/2.0",
            call_id=f"c{k}",
            cseq="1 OPTIONS",
            body=SDP if k % 2 else b"",
        )
        for k in range(600)
    ]
    p = SipParser(SipOptions())

    def parts(recs: list[Record]) -> list[tuple[bytes, bytes | None, bytes | None]]:
        return [(r.raw_payload, r.serialized_payload(), r.serialized_labels()) for r in recs]

    held = p.parse([dgram(m) for m in msgs])
    copies = [tuple(None if b is None else bytes(bytearray(b)) for b in t) for t in parts(held)]
    assert all(b is not None for t in copies for b in t)
    kept = []  # some runs kept for longer than the rings' near reach (1,024 objects)
    for k in range(12):  # each ring comes round several times
        recs = p.parse([dgram(m) for m in msgs])
        got = parts(recs)
        assert got == copies
        for t in got:
            for b in t:  # cached hashes on objects about to be recycled
                assert hash(b) == hash(bytes(bytearray(b)))  # type: ignore[arg-type]
        if k % 4 == 0:
            kept.append(recs)
        del recs, got
    assert parts(held) == copies
    assert all(parts(recs) == copies for recs in kept)
