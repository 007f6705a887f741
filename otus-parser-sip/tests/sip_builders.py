"""Builders of SIP messages, datagrams and stream chunks for the SIP parser tests."""

from __future__ import annotations

from otus import Datagram, StreamChunk

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=sendrecv\r\n"
)


def sip(
    start: str = "INVITE sip:bob@example.com SIP/2.0",
    *,
    call_id: str = "abc123@192.0.2.10",
    cseq: str = "1 INVITE",
    from_tag: str | None = "f1",
    to_tag: str | None = None,
    extra: str = "",
    body: bytes = b"",
    content_type: str = "application/sdp",
    via_branch: str = "z9hG4bK776asdhds",
) -> bytes:
    """A well-formed SIP message with the given identity fields."""
    ft = f";tag={from_tag}" if from_tag else ""
    tt = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{start}\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={via_branch}\r\n"
        f"Max-Forwards: 70\r\n"
        f'From: "Alice" <sip:alice@example.com>{ft}\r\n'
        f"To: <sip:bob@example.com>{tt}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq}\r\n"
        f"Contact: <sip:alice@192.0.2.10:5060>\r\n"
        f"{extra}"
    )
    if body:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def dgram(
    payload: bytes, ts_ns: int = 1_000_000_000, sport: int = 5060, dport: int = 5060
) -> Datagram:
    return Datagram(ts_ns, "192.0.2.10", "192.0.2.20", sport, dport, 17, memoryview(payload))


def chunk(
    data: bytes, *, gap: int = 0, end: bool = False, ts_ns: int = 1_000_000_000
) -> StreamChunk:
    return StreamChunk(ts_ns, "192.0.2.10", "192.0.2.20", 40000, 5060, data, gap=gap, end=end)
