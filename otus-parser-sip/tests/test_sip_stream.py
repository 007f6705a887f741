"""TCP framing through ``parse_stream`` with hand-made StreamChunks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sip_builders import SDP, chunk, sip

from otus_parser_sip import SipOptions
from otus_parser_sip._stream import StreamFramer, _content_length
from otus_parser_sip.parser import SipParser

MSGS = [
    sip(body=SDP, call_id="c1"),
    sip("SIP/2.0 100 Trying", call_id="c1"),
    sip("SIP/2.0 180 Ringing", call_id="c1", to_tag="t1"),
    sip("SIP/2.0 200 OK", call_id="c1", to_tag="t1", body=SDP),
    sip("ACK sip:bob@example.com SIP/2.0", call_id="c1", cseq="1 ACK", to_tag="t1"),
]
STREAM = b"".join(MSGS)


def kinds(records: list) -> list[str]:  # type: ignore[type-arg]
    return [r.labels.get("sip.status_code") or r.labels["sip.method"] for r in records]


def test_several_messages_in_one_segment() -> None:
    p = SipParser(SipOptions())
    assert kinds(p.parse_stream([chunk(STREAM)])) == ["INVITE", "100", "180", "200", "ACK"]
    assert all(r.protocol == 6 for r in p.parse_stream([chunk(MSGS[0])]))


def test_split_at_every_offset() -> None:
    for cut in range(1, len(STREAM)):
        p = SipParser(SipOptions())
        recs = p.parse_stream([chunk(STREAM[:cut]), chunk(STREAM[cut:])])
        assert len(recs) == 5, cut
        assert [bytes(r.raw_payload) for r in recs] == MSGS


def test_one_message_over_many_segments_byte_by_byte() -> None:
    p = SipParser(SipOptions())
    recs = p.parse_stream([chunk(MSGS[0][i : i + 1]) for i in range(len(MSGS[0]))])
    assert len(recs) == 1
    assert recs[0].payload["body"]["sdp"]["media"][0]["port"] == 49170


def test_keepalive_crlfs_between_messages() -> None:
    p = SipParser(SipOptions())
    data = b"\r\n\r\n" + MSGS[0] + b"\r\n" + b"\r\n\r\n" + MSGS[1]
    assert kinds(p.parse_stream([chunk(data)])) == ["INVITE", "100"]
    assert not [k for k in p.stats() if k.startswith("error.")]


def test_mid_stream_join_resyncs_on_next_start_line() -> None:
    p = SipParser(SipOptions())
    # Joined in the middle of the INVITE's SDP: the tail is skipped, the 100 and 180 survive.
    tail = MSGS[0][-40:]
    recs = p.parse_stream([chunk(tail + MSGS[1] + MSGS[2], gap=-1)])
    assert kinds(recs) == ["100", "180"]
    assert p.stats()["tcp.resyncs"] == 1


def test_gap_inside_a_message_drops_it_and_recovers() -> None:
    p = SipParser(SipOptions())
    recs = p.parse_stream(
        [chunk(MSGS[0][:100]), chunk(MSGS[0][150:] + MSGS[1], gap=50), chunk(MSGS[2])]
    )
    assert kinds(recs) == ["100", "180"]
    assert p.stats()["tcp.gaps"] == 1


def test_resync_never_matches_a_via_header() -> None:
    p = SipParser(SipOptions())
    junk = b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKx\r\nFoo: SIP/2.0\r\n"
    assert kinds(p.parse_stream([chunk(junk + MSGS[1], gap=-1)])) == ["100"]


def test_garbage_then_sip_counts_bad_start_line() -> None:
    p = SipParser(SipOptions())
    recs = p.parse_stream([chunk(b"\x00\x01binary\xff\r\n" + MSGS[1])])
    assert kinds(recs) == ["100"]
    assert p.stats()["error.bad_start_line"] == 1


def test_tls_connection_is_counted_as_encrypted() -> None:
    p = SipParser(SipOptions())
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)
    assert p.parse_stream([chunk(hello), chunk(b"\x17\x03\x03\x00\x10" + bytes(16))]) == []
    assert p.stats()["error.encrypted"] == 1


def test_buffer_is_bounded_without_a_blank_line() -> None:
    opts = SipOptions(max_message_size=4096, tcp_buffer_limit=8192)
    p = SipParser(opts)
    start = b"INVITE sip:x@y SIP/2.0\r\n"
    p.parse_stream([chunk(start)])
    for _ in range(100):
        p.parse_stream([chunk(b"X-Filler: " + b"a" * 100 + b"\r\n")])
    assert p.stats()["error.header_too_long"] >= 1
    assert sum(len(f.buf) for f in p.framer._flows.values()) <= 8192
    assert kinds(p.parse_stream([chunk(b"\r\n\r\n" + MSGS[1])])) == ["100"]


def test_oversized_content_length_is_skipped() -> None:
    p = SipParser(SipOptions(max_message_size=4096))
    big = sip(extra="").replace(b"Content-Length: 0", b"Content-Length: 999999")
    recs = p.parse_stream([chunk(big + MSGS[1])])
    assert kinds(recs) == ["100"]
    assert p.stats()["error.message_too_large"] == 1


def test_end_of_stream_forgets_the_flow() -> None:
    p = SipParser(SipOptions())
    p.parse_stream([chunk(MSGS[0][:50])])
    assert p.stats()["tcp.flows"] == 1
    p.parse_stream([chunk(b"", end=True)])
    assert p.stats()["tcp.flows"] == 0


def _ws_frame(payload: bytes, mask: bytes | None) -> bytes:
    n = len(payload)
    head = bytes([0x81])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    else:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def test_sip_over_websocket() -> None:
    p = SipParser(SipOptions())
    upgrade = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Protocol: sip\r\n\r\n"
    )
    frames = _ws_frame(MSGS[0], b"\x01\x02\x03\x04") + _ws_frame(MSGS[4], b"\xaa\xbb\xcc\xdd")
    recs = p.parse_stream([chunk(upgrade), chunk(frames[:70]), chunk(frames[70:])])
    assert kinds(recs) == ["INVITE", "ACK"]
    assert recs[0].raw_payload == MSGS[0]


def _content_length_by_lines(head: bytes) -> int:
    """The reference: every header line in turn (continuation lines name nothing)."""
    for line in head.split(b"\r\n")[1:]:
        colon = line.find(b":")
        if colon <= 0 or line[:1] in (b" ", b"\t"):
            continue
        if line[:colon].rstrip(b" \t").lower() in (b"content-length", b"l"):
            value = line[colon + 1 :].strip()
            return int(value) if value.isdigit() and len(value) <= 9 else -2
    return -1


_NAMES = st.sampled_from(
    ["Content-Length", "content-length", "CONTENT-LENGTH", "l", "L", "l ", "Content-Length\t",
     "Content-Lengthx", "X-l", "lx", "Via", "Subject", " Content-Length", "\tl"]
)  # fmt: skip
_VALUES = st.sampled_from(["0", " 12", "12 ", "007", "-1", "", "abc", "1234567890", "l: 3", "9"])


@given(st.lists(st.tuples(_NAMES, st.sampled_from([":", " :", ": "]), _VALUES), max_size=8))
@settings(max_examples=400, deadline=None)
def test_content_length_is_the_first_header_line_so_named(lines: list) -> None:  # type: ignore[type-arg]
    head = b"\r\n".join([b"INVITE sip:a@b SIP/2.0"] + [f"{n}{c}{v}".encode() for n, c, v in lines])
    assert _content_length(head) == _content_length_by_lines(head)


def test_a_continuation_line_names_no_header() -> None:
    head = b"INVITE sip:a@b SIP/2.0\r\nSubject: hi\r\n Content-Length: 5\r\nl: 7"
    assert _content_length(head) == 7
    assert _content_length(b"SIP/2.0 200 OK\r\nVia: x\r\n\tl: 3") == -1


def test_whole_messages_are_cut_from_the_chunk_itself() -> None:
    errors: dict[str, int] = {}
    f = StreamFramer(errors, max_message_size=65535, buffer_limit=1 << 20, max_flows=8,
                     websocket=False)  # fmt: skip
    one = MSGS[0]
    [(msg, ws)] = list(f.feed(chunk(one)))
    assert msg is one  # one message per segment: passed on, not copied
    assert not ws
    cut = len(MSGS[2]) // 2
    got = [m for m, _ in f.feed(chunk(MSGS[1] + MSGS[2][:cut]))]
    assert got == [MSGS[1]]  # the partial one waits in the flow's buffer
    got = [m for m, _ in f.feed(chunk(MSGS[2][cut:] + MSGS[3]))]
    assert got == [MSGS[2], MSGS[3]]
    assert not errors
    assert f.resyncs == 0
