"""Inputs the sanitizer fuzz run (``test_sip_sanitizers.py``) found crashing the parser.

Each used to raise out of ``SipParser.parse`` (killing the batch); now each gives a record or a
counted reject, the same with the C paths on and off.
"""

from __future__ import annotations

from typing import Any

import pytest
from sip_builders import SDP, dgram, sip

from otus_parser_sip import SipOptions, _scan
from otus_parser_sip.parser import SipParser

FOUND = [
    # QuoteError from the Request-URI parameters
    ("ruri_unterminated_quote", sip('INVITE sip:bob@example.com;a="b SIP/2.0'), "bad_start_line"),
    # QuoteError from the From / To URI parameters
    ("from_unterminated_quote", sip().replace(b"<sip:alice@example.com>",
                                              b'<sip:alice@example.com;"R>'), "bad_from"),
    ("to_unterminated_quote", sip().replace(b"<sip:bob@example.com>", b'<sip:bob@x;"y>'),
     "bad_to"),
    # QuoteError from the Content-Type parameters
    ("content_type_unterminated_quote", sip(body=SDP, content_type='application/sdp;x="y'), None),
    # SDP numbers beyond 64 bits (orjson refused the payload) and non-ASCII digits (int() raised)
    ("sdp_huge_clock_rate", sip(body=SDP.replace(b"PCMU/8000", b"PCMU/800999999999999999999990")),
     None),
    ("sdp_huge_port", sip(body=SDP.replace(b"49170", b"491709999999999999999999")), None),
    ("sdp_huge_port_count", sip(body=SDP.replace(b"49170", b"49170/99999999999999999999")), None),
    ("sdp_huge_rtcp", sip(body=SDP + b"a=rtcp:99999999999999999999999\r\n"), None),
    ("sdp_superscript_digit", sip(body=SDP.replace(b"49170", "4917\u00b2".encode())), None),
]  # fmt: skip


def _parse(data: bytes, native: bool) -> tuple[list[Any], dict[str, int]]:
    _scan.set_enabled(native)
    try:
        p = SipParser(SipOptions(report_errors=True))
        records = p.parse([dgram(data)])
    finally:
        _scan.set_enabled(True)
    return [(r.labels, r.payload, r.serialized_payload()) for r in records], p.stats()


@pytest.mark.parametrize(("name", "data", "reject"), FOUND, ids=[n for n, _, _ in FOUND])
def test_fuzz_finding_is_parsed_or_rejected(name: str, data: bytes, reject: str | None) -> None:
    records, stats = _parse(data, native=True)
    assert (records, stats) == _parse(data, native=False)
    assert len(records) == 1
    labels, payload, _ = records[0]
    if reject is None:
        assert stats["messages"] == 1
        assert payload["body"]["type"] == "application/sdp"
    else:
        assert (labels, payload, stats[f"error.{reject}"]) == (
            {"sip.error": reject},
            {"error": reject},
            1,
        )
