"""SDP and multipart bodies."""

from __future__ import annotations

from sip_builders import SDP

from otus_parser_sip._body import parse_body
from otus_parser_sip._sdp import parse_sdp


def test_sdp_session_and_media_level() -> None:
    s = parse_sdp(SDP)
    assert s["origin"]["username"] == "alice"
    assert s["connection"]["address"] == "192.0.2.10"
    (m,) = s["media"]
    assert (m["media"], m["port"], m["proto"]) == ("audio", 49170, "RTP/AVP")
    assert m["formats"] == ["0", "8", "101"]
    assert m["rtpmap"]["8"] == {"encoding": "PCMA", "clock_rate": 8000}
    assert m["address"] == "192.0.2.10"
    assert m["direction"] == "sendrecv"


def test_sdp_ipv6_media_connection_rtcp_and_mux() -> None:
    body = (
        b"v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\na=sendonly\n"
        b"m=audio 5004 RTP/AVP 96\nc=IN IP6 2001:db8::2\na=rtpmap:96 opus/48000/2\n"
        b"a=rtcp:5010 IN IP6 2001:db8::3\n"
        b"m=video 5006/2 RTP/AVP 97\na=rtcp-mux\na=recvonly\n"
    )
    s = parse_sdp(body)
    audio, video = s["media"]
    assert audio["address"] == "2001:db8::2"
    assert audio["connection"]["addrtype"] == "IP6"
    assert audio["rtpmap"]["96"] == {"encoding": "opus", "clock_rate": 48000, "channels": "2"}
    assert audio["rtcp"] == {"port": 5010, "address": "2001:db8::3"}
    assert audio["direction"] == "sendonly"
    assert video["address"] == "2001:db8::1"
    assert (video["port"], video["port_count"]) == (5006, 2)
    assert video["rtcp_mux"] is True
    assert video["direction"] == "recvonly"


def test_multipart_mixed_with_sdp_part() -> None:
    body = (
        b"--xyz\r\nContent-Type: application/sdp\r\n\r\n" + SDP + b"\r\n"
        b"--xyz\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x00\r\n\xff\r\n"
        b"--xyz--\r\n"
    )
    out = parse_body(body, 'multipart/mixed; boundary="xyz"', True)
    assert out["type"] == "multipart/mixed"
    sdp_part, isup = out["parts"]
    assert sdp_part["type"] == "application/sdp"
    assert sdp_part["sdp"]["media"][0]["port"] == 49170
    assert isup["type"] == "application/isup"
    assert isup["length"] == len(b"\x01\x00\r\n\xff")


def test_unknown_body_is_described_by_type_and_length() -> None:
    out = parse_body(b"<xml/>", "application/pidf+xml", True)
    assert out == {"type": "application/pidf+xml", "length": 6}


def test_sdp_not_parsed_when_disabled() -> None:
    assert "sdp" not in parse_body(SDP, "application/sdp", False)


def test_sdp_garbage_lines_are_skipped() -> None:
    s = parse_sdp(b"\x00\xff junk\r\nm=\r\nm=audio x RTP/AVP\r\nc=IN\r\n")
    assert [m["port"] for m in s["media"] if "port" in m] == [0]
