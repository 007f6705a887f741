"""The C body description (``_native/sip_sdp.c``) equals ``orjson.dumps`` of ``_body.parse_body``.

Every body goes through the whole C JSON path (``parse_message_json``): the payload bytes must
equal ``orjson.dumps`` of the pure-Python reference payload and the media summaries must equal
``_body.media_of`` of its body (codec order included), whether C described the body or declined
it. The common SDP shapes must be described in C; the doubtful ones must be declined. Media
registration from the C summaries must leave the registry as the Python path does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_builders import SDP, dgram, sip
from test_sip_scan import CORPUS

from otus.testing import need
from otus_parser_sip import MediaFlowRegistry, SipOptions, _scan
from otus_parser_sip import parser as parser_module
from otus_parser_sip._body import media_of
from otus_parser_sip._message import Limits, parse_message, parse_message_json
from otus_parser_sip.media import PyMediaFlowRegistry
from otus_parser_sip.parser import SipParser

BENCH_SDP = (
    b"v=0\r\no=- 20518 0 IN IP4 10.0.3.1\r\ns=call\r\nc=IN IP4 10.0.3.1\r\nt=0 0\r\n"
    b"m=audio 10006 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
IPV6 = (
    b"v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\na=sendonly\n"
    b"m=audio 5004 RTP/AVP 96\nc=IN IP6 2001:db8::2\na=rtpmap:96 opus/48000/2\n"
    b"a=rtcp:5010 IN IP6 2001:db8::3\n"
    b"m=video 5006/2 RTP/AVP 97\na=rtcp-mux\na=recvonly\n"
)


def _v(*lines: str, end: str = "\r\n") -> bytes:
    return "".join(line + end for line in lines).encode()


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")
# fmt: off
#: Shapes the C code describes itself.
DESCRIBED = [
    ("builders", SDP, "application/sdp"),
    ("bench", BENCH_SDP, "application/sdp"),
    ("ipv6_rtcp_mux_lf", IPV6, "application/sdp"),
    ("upper_ct_params", SDP, "Application/SDP; charset=utf-8"),
    ("no_trailing_newline", SDP.rstrip(b"\r\n"), "application/sdp"),
    ("session_rtpmap_and_dir", _v("v=0", "a=rtpmap:0 PCMU/8000", "a=inactive", "m=audio 4000 RTP/AVP 0", "c=IN IP4 192.0.2.9"), "application/sdp"),  # noqa: E501
    ("media_inactive", _v(*HEAD, "m=audio 4000 RTP/AVP 0", "a=inactive", "m=video 4002 RTP/AVP 31"), "application/sdp"),  # noqa: E501
    ("port_zero", _v(*HEAD, "m=audio 0 RTP/AVP 0"), "application/sdp"),
    ("no_connection", _v("v=0", "s=-", "m=audio 4000 RTP/AVP 0"), "application/sdp"),
    ("ttl_and_empty_address", _v("v=0", "c=IN IP4 224.2.1.1/127", "m=audio 4000 RTP/AVP 0", "m=audio 4002 RTP/AVP 0", "c=IN IP4 /5"), "application/sdp"),  # noqa: E501
    ("short_lines", _v("v=0", "c=IN IP4", "o=- 1 1 IN IP4", "m=audio", "m=audio 4000", "m=", "x", "", "=", "b=AS:64"), "application/sdp"),  # noqa: E501
    ("port_forms", _v(*HEAD, "m=audio x RTP/AVP 0", "m=audio 4000/x RTP/AVP", "m=audio 4000/3 RTP/AVP 0 8"), "application/sdp"),  # noqa: E501
    ("rtpmap_forms", _v(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtpmap:0", "a=rtpmap: 0 X", "a=rtpmap:1\tX/8000", "a=rtpmap:2 G722", "a=rtpmap:3 X/abc", "a=rtpmap:4 opus/48000/2/9", "a=rtpmap:5  L16 / 8000 ", "a=rtpmap:6 A/8000/"), "application/sdp"),  # noqa: E501
    ("rtcp_forms", _v(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtcp:4001", "m=audio 4002 RTP/AVP 0", "a=rtcp:x", "m=audio 4004 RTP/AVP 0", "a=rtcp:4009 IN IP4", "a=rtcp-mux:odd", "a=rtcp-mux"), "application/sdp"),  # noqa: E501
    ("media_level_session_lines", _v(*HEAD, "m=audio 4000 RTP/AVP 0", "v=1", "o=x", "s=y", "t=1 2"), "application/sdp"),  # noqa: E501
    ("escapes", _v("v=0", 's=a "quoted" \\ name', "a=tool:\tx", 'm=audio 4000 RTP/AVP "0"', "c=IN IP4 192.0.2.1"), "application/sdp"),  # noqa: E501
    ("tabs", _v("v=0", "c=IN\tIP4\t192.0.2.1", "m=audio\t4000\tRTP/AVP\t0", "a=sendonly "), "application/sdp"),  # noqa: E501
    ("direction_per_level", _v("v=0", "a=recvonly", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0", "a=sendonly", "m=audio 4002 RTP/AVP 0"), "application/sdp"),  # noqa: E501
    ("many_media", _v("v=0", "c=IN IP4 192.0.2.1", *(f"m=audio {4000 + 2 * k} RTP/AVP 0" for k in range(16))), "application/sdp"),  # noqa: E501
    ("other_type", b"<xml/>", "application/pidf+xml"),
    ("other_type_params", b"hello", " text/plain ; charset=x"),
]
#: Shapes the C code declines (the Python body path runs; the record is the same).
DECLINED = [
    ("multipart", b"--xx\r\nContent-Type: application/sdp\r\n\r\n" + SDP + b"\r\n--xx--\r\n", "multipart/mixed;boundary=xx"),  # noqa: E501
    ("repeated_c", _v(*HEAD, "c=IN IP4 192.0.2.2"), "application/sdp"),
    ("repeated_v", _v(*HEAD, "v=1"), "application/sdp"),
    ("repeated_pt", _v(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtpmap:0 A/8000", "a=rtpmap:0 B/8000"), "application/sdp"),  # noqa: E501
    ("repeated_direction", _v(*HEAD, "a=sendonly", "a=recvonly"), "application/sdp"),
    ("repeated_rtcp", _v(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtcp:1", "a=rtcp:2"), "application/sdp"),  # noqa: E501
    ("non_ascii", SDP.replace(b"s=-", b"s=\xc3\xa9"), "application/sdp"),
    ("vertical_tab", SDP.replace(b"s=-", b"s=a\x0bb"), "application/sdp"),
    ("bare_cr", SDP.replace(b"s=-\r\n", b"s=-\r"), "application/sdp"),
    ("long_port", _v(*HEAD, "m=audio 1234567890 RTP/AVP 0"), "application/sdp"),
    ("too_many_media", _v("v=0", *(f"m=audio {4000 + 2 * k} RTP/AVP 0" for k in range(17))), "application/sdp"),  # noqa: E501
]
# fmt: on


@pytest.fixture(autouse=True)
def _native() -> Iterator[None]:
    need(_scan.fast_available(), "the otus_parser_sip C extension (_sip_fast) is not built")
    yield
    _scan.set_enabled(True)


def _check(data: bytes, parse_sdp: bool = True) -> bool | None:
    """Assert parity of the JSON path with the reference; whether C described the body
    (None when the C head parser declined the message altogether)."""
    limits = Limits(parse_sdp=parse_sdp)
    _scan.set_enabled(True)
    fn = _scan.json_parser()
    raw = fn(data, limits.max_headers, limits.max_header_line, True, parse_sdp)
    if raw is None:
        return None
    fast = parse_message_json(data, limits, True, fn)
    assert fast is not None
    _scan.set_enabled(False)
    try:
        ref = parse_message(data, limits, datagram=True)
    finally:
        _scan.set_enabled(True)
    p = ref.payload
    assert p is not None
    assert fast[0] == orjson.dumps(p)
    media, ref_media = fast[4], media_of(p.get("body"))
    assert media == ref_media
    if media is not None and ref_media is not None:
        assert [list(m[6].items()) for m in media] == [list(m[6].items()) for m in ref_media]
    return raw[4] is None and "body" in p


@pytest.mark.parametrize(("name", "body", "ctype"), DESCRIBED, ids=[n for n, _, _ in DESCRIBED])
def test_common_bodies_are_described_in_c_and_match(name: str, body: bytes, ctype: str) -> None:
    assert _check(sip(body=body, content_type=ctype)) is True, name
    assert _check(sip(body=body, content_type=ctype), parse_sdp=False) is True, name


@pytest.mark.parametrize(("name", "body", "ctype"), DECLINED, ids=[n for n, _, _ in DECLINED])
def test_doubtful_bodies_are_declined_and_still_match(name: str, body: bytes, ctype: str) -> None:
    assert _check(sip(body=body, content_type=ctype)) is False, name


def test_body_without_content_type() -> None:
    data = sip(body=SDP).replace(b"Content-Type: application/sdp\r\n", b"")
    assert _check(data) is True


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[n for n, _ in CORPUS])
def test_scan_corpus_and_rfc4475_bodies(name: str, data: bytes) -> None:
    _check(data)


_LINES = [
    *HEAD, "m=audio 4000 RTP/AVP 0 8", "m=video 4002/2 RTP/SAVP 96", "c=IN IP6 ::1",
    "a=rtpmap:0 PCMU/8000", "a=rtpmap:96 H264/90000", "a=rtcp:4001 IN IP4 192.0.2.7",
    "a=rtcp-mux", "a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv", "a=ptime:20",
    "b=AS:64", "a=fmtp:96 profile-level-id=42e01f", "c=IN IP4 192.0.2.8/64",
]  # fmt: skip


def test_line_mutants() -> None:
    rng = random.Random(8866)
    described = 0
    for _ in range(1500):
        lines = [rng.choice(_LINES) for _ in range(rng.randint(1, 14))]
        text = bytearray("".join(x + rng.choice(("\r\n", "\n")) for x in lines).encode())
        for _ in range(rng.randint(0, 3)):
            text[rng.randrange(len(text))] = rng.choice(b' \t:/=\r\n"\\0123456789aZ\x00\x80')
        if rng.random() < 0.2 and text:
            del text[rng.randrange(len(text)) :]
        if not text:
            continue
        r = _check(sip(body=bytes(text)))
        described += r is True
    assert described > 300  # the mutants mostly stay describable: the C path is exercised


_line = st.builds(
    lambda k, v: f"{k}={v}",
    st.sampled_from("vosctmabx"),
    st.one_of(
        st.text(alphabet=" \t0123456789/:.-IPNaudioRTPAVmxrtcpsendvy\"\\", max_size=30),
        st.sampled_from(_LINES).map(lambda s: s[2:]),
        st.builds(lambda a, b: f"rtpmap:{a} {b}", st.text("0123456789 ", max_size=4),
                  st.text("abcPCMU/0123456789 \t", max_size=20)),
        st.builds(lambda a: f"rtcp:{a}", st.text("0123456789 INP4.:", max_size=24)),
    ),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_line, min_size=1, max_size=12), st.sampled_from(("\r\n", "\n")))
def test_generated_sdp_lines(lines: list[str], eol: str) -> None:
    _check(sip(body=(eol.join(lines) + eol).encode()))


def _flows(native: bool, body: bytes) -> list[tuple[object, ...]]:
    """The flows one INVITE/200 pair registers: through the batch path into the registry's C
    table (``native``), or through the pure-Python parser into the pure-Python registry."""
    _scan.set_enabled(native)
    try:
        registry = MediaFlowRegistry if native else PyMediaFlowRegistry
        with pytest.MonkeyPatch.context() as m:
            m.setattr(parser_module, "MediaFlowRegistry", registry)
            p = SipParser(SipOptions())
        assert type(p.media) is registry
        invite = sip(body=body, call_id="m1@x")
        ok = sip("SIP/2.0 200 OK", body=body.replace(b"192.0.2", b"198.51.100"), call_id="m1@x",
                 to_tag="t1")  # fmt: skip
        p.parse([dgram(invite), dgram(ok, ts_ns=2_000_000_000)])
        assert p.media is not None
        flows = [
            (f.ip, f.port, f.kind, f.call_id, f.media, list(f.codecs.items()), f.expires_ns)
            for f in p.media.flows()
        ]
        return [*flows, tuple(sorted(p.media.stats().items()))]
    finally:
        _scan.set_enabled(True)


@pytest.mark.parametrize(
    ("name", "body", "ctype"), DESCRIBED[:19], ids=[n for n, _, _ in DESCRIBED[:19]]
)
def test_media_registration_from_c_summaries_equals_python(
    name: str, body: bytes, ctype: str
) -> None:
    assert _flows(True, body) == _flows(False, body)


@pytest.mark.parametrize(
    "address",
    ["ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "media-" + "x" * 80 + ".example.com"],
    ids=["ipv6_45_chars", "long_host_name"],
)
def test_media_registration_of_long_addresses_equals_python(address: str) -> None:
    """An IPv6 address of the full 45 characters (the C table keeps up to 47 bytes in the
    flow) and a host name past that (kept on the heap) register and look up alike."""
    kind = "IP6" if ":" in address else "IP4"
    body = (
        f"v=0\r\no=- 1 1 IN {kind} {address}\r\ns=-\r\nc=IN {kind} {address}\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN {kind} {address}\r\n"
    ).encode()
    flows = _flows(True, body)
    assert flows == _flows(False, body)
    assert [f[:2] for f in flows[:2]] == [(address, 4000), (address, 4001)]


def test_escape_heavy_sdp_with_many_media_matches() -> None:
    """The most output per body byte the C writer can meet (its room is reserved once from the
    body's length, sip_sdp.c sdp_room): quotes, backslashes and tabs in every value, a long
    session address and direction inherited by 16 media, one-byte formats, rtpmaps,
    attributes; run as datagrams under the sanitizers by the fuzz driver too."""
    q = '"\\"\\\t"'
    addr = "a" + q * 12
    lines = ["v=0", f"o=- {q} 0 IN IP4 {addr}", f"s={q * 8}", f"c=IN IP4 {addr}", "t=0 0"]
    lines += ["a=sendonly", f"a={q * 6}"]
    for k in range(16):
        fmts = " ".join(str(n % 10) if n % 3 else q for n in range(40))
        lines += [f"m=audio {10000 + 2 * k} RTP/AVP {fmts}", f"a=rtpmap:{k} {q}/8000/2"]
        lines += [f"a={q}", f"a=x:{q * 4}"]
    for eol in ("\r\n", "\n"):
        body = _v(*lines, end=eol)
        assert _check(sip(body=body)) is True
