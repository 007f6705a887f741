"""One message: start lines, header index, compact forms, folding, framing and limits."""

from __future__ import annotations

import pytest
from sip_builders import SDP, sip

from otus_parser_sip._message import Limits, parse_message

LIM = Limits()


def ok(data: bytes, *, datagram: bool = True) -> dict:  # type: ignore[type-arg]
    res = parse_message(data, LIM, datagram=datagram)
    assert res.reject is None, res.reject
    assert res.payload is not None
    return res.payload


def reject(data: bytes, limits: Limits = LIM) -> str | None:
    res = parse_message(data, limits, datagram=True)
    assert res.payload is None
    return res.reject


def test_request_fields_and_sdp_body() -> None:
    p = ok(
        sip(body=SDP, extra="User-Agent: softphone 1.0\r\nP-Asserted-Identity: <tel:+15551234>\r\n")
    )
    assert p["kind"] == "request"
    assert p["method"] == "INVITE"
    assert p["request_uri"]["user"] == "bob"
    assert p["call_id"] == "abc123@192.0.2.10"
    assert p["from"]["display"] == "Alice"
    assert p["from"]["tag"] == "f1"
    assert p["cseq"] == {"number": 1, "method": "INVITE"}
    assert p["via"][0]["branch"] == "z9hG4bK776asdhds"
    assert p["contact"][0]["uri"]["port"] == 5060
    assert p["max_forwards"] == 70
    assert p["user_agent"] == "softphone 1.0"
    assert p["p_asserted_identity"][0]["uri"]["user"] == "+15551234"
    assert p["content_length"] == len(SDP)
    assert p["body"]["sdp"]["media"][0]["port"] == 49170
    assert [h[0] for h in p["headers"]][:3] == ["Via", "Max-Forwards", "From"]


@pytest.mark.parametrize("reason", ["OK", "", "Very Strange Reason With Spaces"])
def test_response_with_any_reason(reason: str) -> None:
    p = ok(sip(f"SIP/2.0 200 {reason}".rstrip(" ") + (" " if not reason else ""), to_tag="t9"))
    assert p["kind"] == "response"
    assert p["status_code"] == 200
    assert p["reason"] == reason
    assert p["to"]["tag"] == "t9"


def test_any_method_token() -> None:
    p = ok(sip("X-FOO.bar! sip:x@y SIP/2.0", cseq="2 X-FOO.bar!"))
    assert p["method"] == "X-FOO.bar!"
    assert "anomalies" not in p


def test_compact_forms_and_repeated_and_folded_headers() -> None:
    msg = (
        b"OPTIONS sip:x@y SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example:5070;branch=z9hG4bK2\r\n"
        b"V: SIP/2.0/UDP c.example;branch=z9hG4bK3\r\n"
        b"f: <sip:a@example>;tag=1\r\nt: sip:b@example\r\ni: cid-1\r\n"
        b"CSeq: 5\r\n OPTIONS\r\n"
        b"m: <sip:a@host>\r\nk: 100rel\r\nl: 0\r\n"
        b"Subject: a long\r\n\tfolded subject\r\n\r\n"
    )
    p = ok(msg)
    assert [v["host"] for v in p["via"]] == ["a.example", "b.example", "c.example"]
    assert p["via"][1]["port"] == 5070
    assert p["call_id"] == "cid-1"
    assert p["cseq"] == {"number": 5, "method": "OPTIONS"}
    assert p["subject"] == "a long folded subject"
    assert p["supported"] == "100rel"
    assert ["CSeq", "5 OPTIONS"] in p["headers"]


def test_unknown_headers_kept_in_order() -> None:
    p = ok(sip(extra="X-One: 1\r\nx-one: 2\r\n"))
    assert [h for h in p["headers"] if h[0].lower() == "x-one"] == [["X-One", "1"], ["x-one", "2"]]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x01\x02\xff garbage\r\n\r\n", "bad_start_line"),
        (b"HTTP/1.1 200 OK\r\n\r\n", "bad_start_line"),
        (b"INVITE sip:x SIP/3.0\r\n\r\n", "not_sip_2_0"),
        (b"SIP/2.0 2000 OK\r\n\r\n", "bad_status_code"),
        (b"SIP/2.0 099 Low\r\n\r\n", "bad_status_code"),
        (b"INV(ITE sip:x SIP/2.0\r\n\r\n", "bad_method"),
        (b"INVITE sip:x SIP/2.0\r\nVia: SIP/2", "truncated"),
    ],
)
def test_broken_start_lines_and_truncation(data: bytes, reason: str) -> None:
    assert reject(data) == reason


def test_missing_and_conflicting_identity_headers() -> None:
    assert reject(sip().replace(b"Call-ID", b"X-Call-ID")) == "missing_header"
    assert reject(sip(extra="Call-ID: other\r\n")) == "conflicting_header"
    # An identical repeat is harmless.
    assert ok(sip(extra="Call-ID: abc123@192.0.2.10\r\n"))["call_id"] == "abc123@192.0.2.10"


def test_content_length_disagreeing_with_datagram() -> None:
    m = sip(body=SDP)
    assert reject(m[:-10]) == "content_length_mismatch"
    p = ok(m + b"trailing junk")
    assert p["trailing_octets"] == len(b"trailing junk")
    assert p["body"]["length"] == len(SDP)
    assert reject(m.replace(f"Content-Length: {len(SDP)}".encode(), b"Content-Length: -4")) == (
        "bad_content_length"
    )


def test_no_content_length_over_udp_means_rest_of_datagram() -> None:
    m = sip(body=SDP).replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    assert ok(m)["body"]["length"] == len(SDP)


def test_headers_without_blank_line() -> None:
    m = sip()[:-2]  # the datagram ends after the last header's CRLF
    res = parse_message(m, LIM, datagram=True)
    assert res.payload is not None
    assert "missing_blank_line" in res.anomalies
    assert reject(m[:-2]) == "truncated"


def test_64k_header_line_and_10000_headers_are_rejected() -> None:
    big = Limits(max_message_size=1 << 20)
    assert reject(sip(extra="X-Big: " + "a" * 65536 + "\r\n"), big) == "header_too_long"
    assert reject(sip(extra="X-H: v\r\n" * 10000), big) == "too_many_headers"


def test_header_line_without_colon_is_an_anomaly() -> None:
    res = parse_message(sip(extra="NoColonHere\r\n"), LIM, datagram=True)
    assert res.payload is not None
    assert res.anomalies == ["bad_header_line"]


def test_utf8_and_binary_bytes_in_values_do_not_break_parsing() -> None:
    p = ok(sip(extra="Subject: caf\xc3\xa9 \x00\xff\r\n".encode("latin-1").decode("latin-1")))
    assert p["call_id"] == "abc123@192.0.2.10"
