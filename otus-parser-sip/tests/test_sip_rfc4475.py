"""RFC 4475 torture messages: valid ones give the listed fields, invalid ones a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sip_builders import dgram

from otus_parser_sip import SipOptions
from otus_parser_sip.parser import SipParser

DATA = Path(__file__).parent / "data" / "rfc4475"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
CASES = MANIFEST["messages"]


def test_manifest_is_complete() -> None:
    assert len(CASES) == MANIFEST["count"] == 49
    for case in CASES:
        assert (DATA / case["file"]).stat().st_size == case["size"]


def _fields(p: dict[str, Any]) -> dict[str, Any]:
    body = p.get("body", {})
    out: dict[str, Any] = {
        "kind": p["kind"],
        "call_id": p["call_id"],
        "cseq_number": p["cseq"]["number"],
        "cseq_method": p["cseq"]["method"],
        "from_tag": p["from"].get("tag"),
        "to_tag": p["to"].get("tag"),
        "content_length": p.get("content_length"),
        "body_is_sdp": body.get("type") == "application/sdp" and body.get("length", 0) > 0,
    }
    if p["kind"] == "request":
        out["method"] = p["method"]
    else:
        out["status"] = p["status_code"]
        out["reason"] = p["reason"]
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_torture_message(case: dict[str, Any]) -> None:
    parser = SipParser(SipOptions())
    data = (DATA / case["file"]).read_bytes()
    records = parser.parse([dgram(data)])
    stats = parser.stats()
    errors = {k: v for k, v in stats.items() if k.startswith("error.")}
    if case["expect"] == "reject":
        assert records == []
        assert stats["rejected"] == 1
        assert errors, "a rejected message must be counted under error.<reason>"
        return
    (rec,) = records
    expected = {k: v for k, v in case["fields"].items() if k != "body_length"}
    assert _fields(rec.payload) == expected
    assert rec.labels["sip.call_id"] == expected["call_id"]
    if case["expect"] == "parse-lenient":
        assert errors, "a malformed message must be flagged with a reason"
        assert rec.payload["anomalies"]
    else:
        assert "anomalies" not in rec.payload
        assert not errors


def test_dblreq_trailing_octets_are_not_part_of_the_message() -> None:
    parser = SipParser(SipOptions())
    data = (DATA / "dblreq.dat").read_bytes()
    (rec,) = parser.parse([dgram(data)])
    assert rec.payload["trailing_octets"] == 450
    assert len(rec.raw_payload) == len(data) - 450
    assert parser.stats()["trailing_octets"] == 1


def test_every_message_over_tcp_too() -> None:
    """All sent back to back on one TCP stream: no hang, every valid one comes out.

    Left out: messages only meaningful as datagrams (trailing octets, no Content-Length, no
    empty line) and clerr, whose Content-Length of 9999 rightly swallows what follows on TCP.
    """
    from sip_builders import chunk

    parser = SipParser(SipOptions())
    udp_only = ("dblreq.dat", "inv2543.dat", "baddn.dat", "clerr.dat")
    framed = [c for c in CASES if c["file"] not in udp_only]
    stream = b"".join((DATA / c["file"]).read_bytes() for c in framed)
    records = parser.parse_stream([chunk(stream[i : i + 97]) for i in range(0, len(stream), 97)])
    call_ids = {r.payload["call_id"] for r in records}
    for c in framed:
        if c["expect"] == "parse":
            assert c["fields"]["call_id"] in call_ids, c["file"]
