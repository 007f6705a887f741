"""The C JSON path (``_sip_fast.parse_json``) writes exactly ``orjson.dumps`` of the reference.

When it answers, the payload bytes must equal ``orjson.dumps`` of the dict the pure-Python
``parse_message`` builds (key order, types, escaping), the labels must be ``labels_of`` that
dict, and status, trailing octets and body description must agree; the reference must have
found nothing to flag. The common shapes must be answered, or the fast path would be dead.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_builders import SDP, sip
from sip_shapes import ACCEPTED, TRICKY
from test_sip_scan import CORPUS, call_mix

from otus.testing import need
from otus_parser_sip import _scan
from otus_parser_sip._body import media_of
from otus_parser_sip._message import Limits, parse_message, parse_message_json

LIMITS = Limits()


@pytest.fixture(autouse=True)
def _native() -> Iterator[None]:
    need(_scan.fast_available(), "the otus_parser_sip C extension (_sip_fast) is not built")
    yield
    _scan.set_enabled(True)


def _check(data: bytes, datagram: bool = True) -> bool:
    """Assert parity when the JSON path answers; True when it did."""
    _scan.set_enabled(True)
    fast = parse_message_json(data, LIMITS, datagram, _scan.json_parser())
    if fast is None:
        return False
    _scan.set_enabled(False)  # the pure-Python reference, not the C dict path
    try:
        ref = parse_message(data, LIMITS, datagram=datagram)
    finally:
        _scan.set_enabled(True)
    assert ref.anomalies == []
    p = ref.payload
    assert p is not None
    payload_json, labels, status, trailing, media = fast
    assert payload_json == orjson.dumps(p)
    from otus_parser_sip.parser import labels_of

    assert json.dumps(labels) == json.dumps(labels_of(p))
    assert status == (0 if p["kind"] == "request" else p["status_code"])
    assert trailing == p.get("trailing_octets", 0)
    ref_media = media_of(p.get("body"))
    assert media == ref_media
    if media is not None and ref_media is not None:  # codec order too
        assert [list(m[6].items()) for m in media] == [list(m[6].items()) for m in ref_media]
    return True


@pytest.mark.parametrize(("name", "data"), ACCEPTED, ids=[n for n, _ in ACCEPTED])
def test_common_shapes_take_the_json_path_and_match(name: str, data: bytes) -> None:
    assert _check(data), name
    assert _check(data, datagram=False), name


def test_bench_mix_takes_the_json_path() -> None:
    assert all(_check(m) for m in call_mix(3))


MULTIPART = b"--xx\r\nContent-Type: application/sdp\r\n\r\n" + SDP + b"\r\n--xx--\r\n"
ESCAPES = [
    ("tab_quote_backslash", sip(extra='Subject: a\tb "c" \\d\r\n')),
    ("quoted_in_header_index", sip(extra='X-Q: "\\"\r\n')),
    ("del", sip(extra="X-Del: a\x7fb\r\n")),
    ("quote_in_param_name", sip(extra='Route: <sip:p;a"b;c"=1>\r\n')),
    ("backslash_in_uri", sip("INVITE sip:b\\ob@example.com SIP/2.0")),
    ("quote_in_reason", sip('SIP/2.0 200 "O\\K"', to_tag="t")),
    ("joined_scalars", sip(extra="Allow: INVITE\r\nAllow: BYE\r\nSupported: a\r\nk: b\r\n")),
    ("no_content_length", sip().replace(b"Content-Length: 0\r\n", b"")),
    ("no_cl_body", sip(body=SDP).replace(b"Content-Length: %d\r\n" % len(SDP), b"")),
    ("multipart", sip(body=MULTIPART).replace(b"Content-Type: application/sdp\r\nContent-Length",
              b"Content-Type: multipart/mixed;boundary=xx\r\nContent-Length")),
    ("other_body", sip(body=b"hello").replace(b"application/sdp", b"text/plain")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data"), ESCAPES, ids=[n for n, _ in ESCAPES])
def test_escaping_and_framing_match(name: str, data: bytes) -> None:
    answered = _check(data)
    _check(data, datagram=False)
    if name != "del":  # the header scanner declines DEL (the reference keeps it)
        assert answered, name


#: Shapes a dict would merge or the labels could not take from one header: always declined.
DECLINED = [
    ("dup_tag", sip().replace(b";tag=f1", b";tag=f1;TAG=f2")),
    ("dup_via_param", sip(extra="Via: SIP/2.0/UDP h;branch=a;branch=b\r\n")),
    ("dup_uri_param", sip(extra="Contact: <sip:a@b;lr;lr>\r\n")),
    ("two_user_agents", sip(extra="User-Agent: a\r\nUser-Agent: b\r\n")),
    ("two_content_types", sip(extra="Content-Type: a\r\nc: b\r\n")),
    ("cl_beyond_data", sip().replace(b"Content-Length: 0", b"Content-Length: 5")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data"), DECLINED, ids=[n for n, _ in DECLINED])
def test_doubtful_shapes_are_declined(name: str, data: bytes) -> None:
    assert parse_message_json(data, LIMITS, True, _scan.json_parser()) is None


def test_stream_message_without_content_length_is_declined() -> None:
    data = sip().replace(b"Content-Length: 0\r\n", b"")
    assert parse_message_json(data, LIMITS, False, _scan.json_parser()) is None
    assert _check(data, datagram=True)


@pytest.mark.parametrize(("name", "data"), TRICKY + CORPUS, ids=[n for n, _ in TRICKY + CORPUS])
def test_corpus_matches_or_declines(name: str, data: bytes) -> None:
    _check(data)
    _check(data, datagram=False)


def test_structural_mutants_match() -> None:
    rng = random.Random(8259)
    bases = [data for _, data in ACCEPTED] + [data for _, data in ESCAPES]
    answered = 0
    for _ in range(3000):
        b = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.choice(b' \t:;,<>"@?=[]/\\*.-zZ0\x01\x7f')
        answered += _check(bytes(b))
    assert answered > 300


def test_disabled_json_path_returns_none() -> None:
    data = sip()
    _scan.set_enabled(False)
    assert parse_message_json(data, LIMITS, True, _scan.json_parser()) is None
    _scan.set_enabled(True)
    assert parse_message_json(data, LIMITS, True, _scan.json_parser()) is not None


VALUE = st.text(alphabet='ab:;=,<>"@ \t?[]./*-1S"\\TAG', max_size=40)


@settings(max_examples=400, deadline=None)
@given(VALUE, VALUE, VALUE, VALUE, VALUE, VALUE)
def test_generated_header_values_match(
    frm: str, to: str, via: str, contact: str, ruri: str, subject: str
) -> None:
    data = (
        f"INVITE sip:{ruri.strip()} SIP/2.0\r\nVia: SIP/2.0/UDP h{via}\r\nFrom: {frm}\r\n"
        f"To: <sip:{to}>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\n"
        f"Record-Route: {contact}\r\nSubject: {subject}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    _check(data)


def test_header_end_found_at_every_offset() -> None:
    """The blank line that ends the head, at every offset against the 16-byte blocks of the
    SSE2 search (and CR LF CR LF in the body or a bare LF before it, which must not count)."""
    for pad in range(40):
        subject = "x" * (pad + 1)
        assert _check(sip(extra=f"Subject: {subject}\r\n")), pad
        assert _check(sip(extra=f"Subject: {subject}\r\n", body=b"v=0\r\n\r\n" + b"a" * pad)), pad
        assert _check(
            sip(extra=f"Subject: {subject}\r\n", content_type="text/plain", body=b"\r\n\r\n")
        )


def test_escapes_at_every_offset_of_a_value() -> None:
    """Bytes orjson escapes (quote, backslash, tab, DEL kept as is) at every offset and in
    every value length around the 16-byte blocks of the SSE2 copy (one, two and four blocks
    at once for short strings, then the loop)."""
    taken = 0
    for n in range(1, 70):
        for k in range(n):
            for ch in ('"', "\\", "\t", "\x7f"):
                subject = "s" * k + ch + "t" * (n - k - 1)
                taken += _check(sip(extra=f"Subject: {subject}\r\n"))
    assert taken > 2000, taken


def test_split_values_at_every_offset_and_length() -> None:
    """URIs, parameters and comma lists at every offset and length around the 16-byte blocks
    of the SSE2 searches (jb_find_any), also as the last header of a message without a body
    (the whole-block loads must stay inside the message: these take the byte loop)."""
    taken = 0
    for pad in range(17):
        for n in range(0, 34, 3):
            v = "p" * n
            extra = (
                f"Subject: {'x' * (pad + 1)}\r\n"
                f'Route: "R {v}" <sip:u{v}@h{v}.example:5060;lr;x={v}>;y="{v} ;q", <sip:r@h>\r\n'
                f"Record-Route: <sip:c{v}@d;t={v}>;expires={n}, <sip:e@f?h={v}>\r\n"
            )
            taken += _check(sip(extra=extra, via_branch=f"z9hG4bK{v}", from_tag=f"f{v}"))
            head = sip(extra=extra).split(b"Content-Length")[0]
            for last in (
                f"Contact: <sip:u{v}@h;x={v}>;tag={v}q, <sip:w@z>",
                f"P-Asserted-Identity: sip:u{v}@h{v};user=phone",
                f"Via: SIP/2.0/TCP h{v}:5061;branch=z{v};rport",
            ):
                taken += _check(head + last.encode() + b"\r\n\r\n")
    assert taken == 17 * 12 * 4, taken


def test_case_folding_and_ports_at_every_offset_and_length() -> None:
    """Parameter names and schemes lower-cased, transports upper-cased (w_case, 16 bytes at a
    time), the last ':' of a host and port (jb_rfind) and whitespace in a URI (jb_has_ws) at
    every offset and length around the 16-byte blocks, also as the last header of a message
    without a body (where the whole-block loads must not run past the message)."""
    taken = 0
    for pad in range(17):
        for n in range(0, 40, 3):
            v = "Pq" * (n // 2) + "Z" * (n % 2)
            extra = (
                f"Subject: {'x' * (pad + 1)}\r\n"
                f"Route: <SIP:u@h{v.lower()}.example:{5000 + n};Lr;X{v}=Y{v};{v}Ab>\r\n"
                f"Record-Route: <sIp:h{v}:5060;tRaNsPoRt=TCP;N{v}>\r\n"
            )
            taken += _check(sip(extra=extra, via_branch=f"z9hG4bK{v}"))
            head = sip(extra=extra).split(b"Content-Length")[0]
            for last in (
                f"Via: SIP/2.0/{'uDp' if n % 2 else 'tls'} h{v}.example:{5060 + n};Br{v}=1",
                f"Contact: <SIPS:{v}@[2001:db8::{n:x}]:{5061 + n};Q{v}=a>;E{v}=3",
                f"P-Asserted-Identity: <tel:+49{n};PhOnE-{v}=Ab>",
            ):
                taken += _check(head + last.encode() + b"\r\n\r\n")
            # whitespace inside a URI: the reference flags it, so the C path declines
            assert not _check(sip(extra=f"Route: <sip:u{v} x@h{v}>\r\n"))
    assert taken == 17 * 14 * 4, taken


def test_repeated_values_match_wherever_they_sit() -> None:
    """From, To, Contact and Via values repeated across messages (the writers' memo answers
    them from a copy, with the label views rebased onto the new message): at other offsets, in
    another header order, many distinct values cycled (entries replaced) and lengths around
    the memo's key and output limits, each message against the reference."""
    taken = 0
    values = [f"u{k}" * (1 + k % 7) for k in range(90)] + ["w" * n for n in range(120, 176, 4)]
    for rnd in range(2):
        for k, v in enumerate(values):
            pad = "x" * ((k * 7 + rnd * 5) % 40 + 1)
            frm = f'"D {v[:20]}" <sip:{v}@h{k}.example;p={v[:30]}>;tag=t{v[:40]}'
            to = f"<sip:{v}@example.com;user=phone>" + (f";tag=b{k}" if rnd else "")
            via = f"SIP/2.0/UDP h{v[:50]}:5060;branch=z9hG4bK{v};rport;received=10.0.0.{k}"
            contact = f"<sip:{v}@10.0.0.1:5060;transport=udp>;expires={k}"
            head = [f"Via: {via}", f"From: {frm}", f"To: {to}", f"Contact: {contact}"]
            if (k + rnd) % 2:
                head.reverse()
            data = (
                f"INVITE sip:{v}@example.com SIP/2.0\r\nSubject: {pad}\r\n"
                + "\r\n".join(head)
                + f"\r\nCall-ID: c{k}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            taken += _check(data)
            reply = data.replace(b"INVITE sip:", b"X", 1).split(b"\r\n", 1)[1]
            taken += _check(b"SIP/2.0 180 Ringing\r\n" + reply)
    assert taken == 2 * 2 * len(values), taken


def test_values_match_while_the_memo_turns_off_and_on() -> None:
    """Thousands of values that never repeat within the memo's reach (it turns itself off after
    a round of misses, then tries again), then repeated ones: every message against the
    reference, whichever way the writers ran."""
    taken = 0
    for k in range(18000):  # past the rest of the Via memo too (one lookup per message)
        v = f"n{k}" if k < 2200 else f"r{k % 3}"
        data = (
            f"OPTIONS sip:{v}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h{v}:5060;branch=z{v}\r\n"
            f'From: "F {v}" <sip:{v}@a.example>;tag=f{v}\r\nTo: <sip:{v}@b.example>\r\n'
            f"Call-ID: c{k}\r\nCSeq: 1 OPTIONS\r\nContact: <sip:{v}@10.0.0.1>\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        taken += _check(data)
    assert taken == 18000, taken
