"""Joining a TCP stream in the middle (a capture started late, a gap): the tail of a body
without a line end of its own must not swallow the next start line."""

from __future__ import annotations

from sip_builders import chunk, sip

from otus_parser_sip import SipOptions
from otus_parser_sip._stream import find_start_line
from otus_parser_sip.parser import SipParser

BODY = b"hello there, no line end"
M1 = sip("MESSAGE sip:bob@example.com SIP/2.0", call_id="c1", cseq="1 MESSAGE", body=BODY)
M2 = sip("MESSAGE sip:bob@example.com SIP/2.0", call_id="c2", cseq="2 MESSAGE", body=b"two")
R1 = sip("SIP/2.0 200 OK", call_id="c1", cseq="1 MESSAGE", to_tag="t1")
PRACK = sip("PRACK sip:bob@example.com SIP/2.0", call_id="c3", cseq="3 PRACK")


def summary(data: bytes) -> tuple[list[tuple[str | None, str | None]], dict[str, int]]:
    parser = SipParser(SipOptions())
    records = parser.parse_stream([chunk(data, gap=-1)])
    found = [(r.labels.get("sip.method"), r.labels.get("sip.status_code")) for r in records]
    errors = {k: v for k, v in parser.stats().items() if k.startswith("error.") and v}
    return found, errors


def test_a_request_right_after_a_body_tail_keeps_its_method() -> None:
    found, errors = summary(M1[-10:] + M2)
    assert found == [("MESSAGE", None)]
    assert errors == {}


def test_a_response_right_after_a_body_tail_is_found() -> None:
    found, errors = summary(M1[-10:] + R1 + M2)
    assert found == [("MESSAGE", "200"), ("MESSAGE", None)]
    assert errors == {}


def test_the_longest_method_wins() -> None:
    # "...endPRACK sip:..." ends in both ACK and PRACK
    found, _ = summary(M1[-10:] + PRACK)
    assert found == [("PRACK", None)]


def test_start_lines_at_a_line_start_are_found_as_before() -> None:
    assert find_start_line(b"v=0\r\n" + M2) == 5
    assert find_start_line(b"a=x\r\n" + R1) == 5
    assert find_start_line(b"Via: SIP/2.0/TCP h;branch=z9hG4bKx\r\nFoo: SIP/2.0\r\n") == -1
    # an extension method at a line start is still a request line
    assert find_start_line(b"x\r\nFOO sip:a@b SIP/2.0\r\n") == 3
