"""The C head parser (``_sip_fast.parse_head``) equals the pure-Python reference when it answers.

It may decline (None) anything; when it answers, the payload (keys, order, types) and the
Content-Length must be exactly those of ``_parse_head_python``, the labels those of
``labels_of``, and the reference must have found no anomaly. The common shapes must be
answered, or the fast path would silently be dead.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_builders import SDP, sip
from test_sip_scan import CORPUS, call_mix

from otus.testing import need
from otus_parser_sip import _scan
from otus_parser_sip._message import Limits, _parse_head_python
from otus_parser_sip.parser import labels_of

LIMITS = Limits()

#: Well-formed variants the fast path must answer (and equal the reference on).
ACCEPTED = [
    ("plain", sip()),
    ("sdp", sip(body=SDP)),
    ("response", sip("SIP/2.0 180 Ringing", to_tag="t1")),
    ("response_no_reason", sip("SIP/2.0 200", to_tag="t1")),
    ("response_empty_reason", sip("SIP/2.0 200 ", to_tag="t1")),
    ("ack", sip("ACK sip:bob@example.com SIP/2.0", cseq="1 INVITE")),
    ("two_vias", sip(extra="Via: SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKb;"
                           "received=192.0.2.1;rport=5062\r\n")),
    ("via_list", sip(extra="Via: SIP/2.0/UDP a.example.com;branch=z1, "
                           "SIP/2.0/TLS b:5061;rport\r\n")),
    ("via_lowercase_transport", sip(extra="Via: SIP/2.0/sctp h.example.com:5060;branch=x\r\n")),
    ("contacts", sip(extra='Contact: "Bob Smith" <sip:bob@h;transport=tcp>;expires=60;q=0.5, '
                           "<sips:b2@h>\r\n")),
    ("star", sip(extra="Contact: *\r\n")),
    ("routes", sip(extra="Route: <sip:p1.example.com;lr>, <sip:p2;lr>\r\n"
                         "Record-Route: <sip:p3;lr>\r\n")),
    ("pai", sip(extra="P-Asserted-Identity: <tel:+4930123;phone-context=x>, sip:a@b\r\n")),
    ("tel_uri", sip("INVITE tel:+4930123;phone-context=example.com SIP/2.0")),
    ("other_scheme", sip("OPTIONS urn:service:sos SIP/2.0", cseq="1 OPTIONS")),
    ("password", sip("INVITE sip:bob:secret@example.com:5070;user=phone SIP/2.0")),
    ("ipv6_ruri", sip("INVITE sip:bob@[2001:db8::2]:5060 SIP/2.0")),
    ("no_port_bad", sip("INVITE sip:bob@example.com:99999 SIP/2.0")),
    ("uppercase_scheme", sip("INVITE SIP:bob@example.com SIP/2.0")),
    ("quoted_param", sip(extra='Contact: <sip:a@b>;+sip.instance="<urn:uuid:1>";reg-id=1\r\n')),
    ("flag_params", sip(extra="Route: <sip:p;lr;ob>;x;y=\r\n")),
    ("empty_ua", sip(extra="User-Agent:\r\nServer: s\r\n")),
    ("empty_ua_only", sip(extra="User-Agent:\r\n")),
    ("no_via_port", sip(extra="Via: SIP/2.0/UDP [::1];branch=z9\r\n")),
    ("scalars", sip(extra="User-Agent: softphone 1.0\r\nExpires: 3600\r\n"
                          "Subject: hello there\r\n")),
    ("repeated_scalar", sip(extra="Allow: INVITE, ACK\r\nAllow: BYE\r\nSupported: timer\r\n")),
    ("server", sip("SIP/2.0 200 OK", to_tag="t", extra="Server: pbx\r\nReason: SIP;cause=200\r\n")),
    ("date", sip(extra="Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n")),
    ("compact", sip(extra="m: <sip:c@h>\r\nk: timer\r\ns: subj\r\no: presence\r\n")),
    ("addr_spec_from", sip().replace(b'"Alice" <sip:alice@example.com>', b"sip:alice@example.com")),
    ("token_display", sip().replace(b'"Alice"', b"Alice Smith")),
    ("empty_display", sip().replace(b'"Alice"', b'""')),
    ("unknown_headers", sip(extra="X-Foo: bar\r\nP-Charging-Vector: icid-value=1\r\n")),
    ("trailing", sip(body=SDP) + b"garbage"),
]  # fmt: skip

#: Shapes the fast path may decline (the reference flags or rejects them, or they are rare).
TRICKY = [
    ("escaped_display", sip().replace(b'"Alice"', b'"Al\\"ice"')),
    ("uri_space", sip().replace(b"<sip:bob@example.com>", b"< sip:bob@example.com >")),
    ("dup_call_id", sip(extra="Call-ID: abc123@192.0.2.10\r\n")),
    ("conflicting_call_id", sip(extra="i: other\r\n")),
    ("cseq_mismatch", sip(cseq="1 BYE")),
    ("cseq_big", sip(cseq="4294967296 INVITE")),
    ("cseq_zeros", sip(cseq="00000000001 INVITE")),
    ("no_via", sip().replace(b"Via:", b"X-Via:")),
    ("bad_via", sip(extra="Via: nonsense\r\n")),
    ("bad_mf", sip().replace(b"Max-Forwards: 70", b"Max-Forwards: 300")),
    ("two_mf", sip(extra="Max-Forwards: 70\r\n")),
    ("bad_date", sip(extra="Date: yesterday\r\n")),
    ("two_cl", sip(extra="Content-Length: 0\r\n")),
    ("bad_cl", sip().replace(b"Content-Length: 0", b"Content-Length: x")),
    ("long_cl", sip().replace(b"Content-Length: 0", b"Content-Length: 0000000000")),
    ("cl_too_big", sip().replace(b"Content-Length: 0", b"Content-Length: 10")),
    ("ruri_brackets", sip("INVITE <sip:bob@example.com> SIP/2.0")),
    ("ruri_headers", sip("INVITE sip:bob@example.com?Subject=x SIP/2.0")),
    ("two_spaces", sip("INVITE  sip:bob@example.com SIP/2.0")),
    ("bad_method", sip("INV@TE sip:bob@example.com SIP/2.0")),
    ("sip_1_0", sip("INVITE sip:bob@example.com SIP/1.0")),
    ("bad_status", sip("SIP/2.0 999 Odd")),
    ("status_4", sip("SIP/2.0 2000 OK")),
    ("contact_qmark", sip(extra="Contact: sip:a@b?x=y\r\n")),
    ("contact_garbage", sip(extra='Contact: "unterminated <sip:a@b>\r\n')),
    ("param_space", sip().replace(b";tag=f1", b" ; tag = f1")),
    ("param_lt", sip(extra="Route: <sip:p>;x=<y>\r\n")),
    ("params_no_semi", sip().replace(b";tag=f1", b"tag=f1")),
    ("unterminated_gt", sip(extra="Route: <sip:p\r\n")),
    ("tab_start_line", sip("INVITE\tsip:bob@example.com SIP/2.0")),
    ("start_only", b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
]  # fmt: skip


def _ref(data: bytes) -> tuple[Any, list[str]]:
    anomalies: list[str] = []
    hend = data.find(b"\r\n\r\n")
    return _parse_head_python(data, hend, LIMITS, anomalies), anomalies


def _check(data: bytes) -> bool:
    """Assert parity when the fast path answers; True when it did."""
    hend = data.find(b"\r\n\r\n")
    if hend < 0:
        return False
    fast = _scan.parse_head(data, hend, LIMITS.max_headers, LIMITS.max_header_line)
    if fast is None:
        return False
    ref, anomalies = _ref(data)
    assert anomalies == []
    assert isinstance(ref, tuple)
    payload, cl, labels = fast
    assert (payload, cl, None) == ref
    # Same key order and value types all the way down (what reporters serialise).
    assert json.dumps(payload) == json.dumps(ref[0])
    assert json.dumps(labels) == json.dumps(labels_of(ref[0]))
    return True


@pytest.fixture(autouse=True)
def _native() -> None:
    need(_scan.fast_available(), "the otus_parser_sip C extension (_sip_fast) is not built")


@pytest.mark.parametrize(("name", "data"), ACCEPTED, ids=[n for n, _ in ACCEPTED])
def test_common_shapes_take_the_fast_path_and_match(name: str, data: bytes) -> None:
    assert _check(data), name


def test_bench_mix_takes_the_fast_path() -> None:
    assert all(_check(m) for m in call_mix(3))


@pytest.mark.parametrize(("name", "data"), TRICKY, ids=[n for n, _ in TRICKY])
def test_tricky_shapes_match_or_decline(name: str, data: bytes) -> None:
    _check(data)


def test_flagged_messages_are_declined() -> None:
    for name, data in TRICKY + CORPUS:
        ref, anomalies = _ref(data) if data.find(b"\r\n\r\n") >= 0 else ("truncated", [])
        if anomalies or isinstance(ref, str):
            hend = data.find(b"\r\n\r\n")
            got = _scan.parse_head(data, hend, 256, 8192) if hend >= 0 else None
            assert got is None, name


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[n for n, _ in CORPUS])
def test_scan_corpus_matches(name: str, data: bytes) -> None:
    _check(data)


def test_structural_mutants_match() -> None:
    rng = random.Random(3261)
    bases = [data for _, data in ACCEPTED]
    answered = 0
    for _ in range(3000):
        b = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.choice(b' \t:;,<>"@?=[]/\\*.-zZ0')
        answered += _check(bytes(b))
    assert answered > 300  # most single-byte changes still parse plainly


def test_disabled_fast_path_returns_none() -> None:
    data = sip()
    _scan.set_enabled(False)
    try:
        assert _scan.parse_head(data, data.find(b"\r\n\r\n"), 256, 8192) is None
    finally:
        _scan.set_enabled(True)
    assert _scan.parse_head(data, data.find(b"\r\n\r\n"), 256, 8192) is not None


VALUE = st.text(alphabet='ab:;=,<>"@ \t?[]./*-1S"', max_size=40)


@settings(max_examples=400, deadline=None)
@given(VALUE, VALUE, VALUE, VALUE, VALUE)
def test_generated_header_values_match(
    frm: str, to: str, via: str, contact: str, ruri: str
) -> None:
    data = (
        f"INVITE sip:{ruri.strip()} SIP/2.0\r\nVia: SIP/2.0/UDP h{via}\r\nFrom: {frm}\r\n"
        f"To: <sip:{to}>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\n"
        f"Record-Route: {contact}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    _check(data)
