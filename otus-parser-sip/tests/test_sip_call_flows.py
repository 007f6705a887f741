"""Call flows as a VoIP operator captures them: what the dialog table, the labels, the counters
and the media registry make of each (docs/sip.md, "Dialogs" and "Media flows").

Every flow runs on the C paths (batch and dialog table in C) and on the pure-Python reference,
with the same expectations. The flows were first recorded for real (sipp and UDP/TCP sockets on
loopback, tcpdump, compared with tshark's ``sip`` decoding); they are rebuilt here with the
builders so that each test is small and exact about times.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sip_builders import dgram, sip

from otus import Record, StreamChunk
from otus.testing import need
from otus_parser_sip import SipOptions, _scan
from otus_parser_sip.parser import SipParser

MS = 1_000_000
S = 1000 * MS
CID = "abc123@192.0.2.10"


def sdp(ip: str, port: int, *, codec: str = "0 PCMU", direction: str = "sendrecv",
        conn: str | None = None) -> bytes:  # fmt: skip
    """An audio offer or answer: ``conn`` overrides the ``c=`` address (``0.0.0.0`` hold)."""
    pt, name = codec.split()
    return (
        f"v=0\r\no=u 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {conn or ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na={direction}\r\n"
    ).encode()


CALLER = sdp("192.0.2.10", 40000)
CALLEE = sdp("192.0.2.20", 50000)


@pytest.fixture(params=["c", "python"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each flow on the C paths and on the pure-Python reference."""
    if request.param == "c":
        need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    _scan.set_enabled(request.param == "c")
    try:
        yield request.param
    finally:
        _scan.set_enabled(True)


def run(p: SipParser, *msgs: tuple[int, bytes]) -> list[Record]:
    """The messages as datagrams, one batch (the batch path sees the whole flow at once)."""
    return p.parse([dgram(m, ts_ns=t) for t, m in msgs])


def label(recs: list[Record], key: str) -> list[str | None]:
    return [r.labels.get(key) for r in recs]


def inv(cseq: int = 1, **kw: object) -> bytes:
    return sip(cseq=f"{cseq} INVITE", **kw)  # type: ignore[arg-type]


def resp(status: str, cseq: str = "1 INVITE", **kw: object) -> bytes:
    return sip(f"SIP/2.0 {status}", cseq=cseq, **kw)  # type: ignore[arg-type]


def req(method: str, cseq: int, **kw: object) -> bytes:
    return sip(f"{method} sip:bob@192.0.2.20 SIP/2.0", cseq=f"{cseq} {method}", **kw)  # type: ignore[arg-type]


def outcomes(p: SipParser) -> dict[str, int]:
    st = p.stats()
    keys = ("created", "terminated", "failed", "cancelled", "timeout", "expired")
    return {k: st.get(f"dialogs.{k}", 0) for k in keys}


# -- the call attempt that is challenged or redirected and tried again is one call ------------


@pytest.mark.parametrize(
    "challenge",
    [
        "407 Proxy Authentication Required",
        "401 Unauthorized",
        "302 Moved Temporarily",
        "422 Session Interval Too Small",
    ],
)
def test_challenged_or_redirected_invite_retried_is_one_call(mode: str, challenge: str) -> None:
    """RFC 3261 22.2 / 8.1.3.4: after a 401/407 (or a 3xx) the caller sends the INVITE again
    with the same Call-ID and From tag and a higher CSeq. Before: the challenge made the call
    ``failed`` (dialogs.failed +1) and the retry a second call (dialogs.created 2), its setup
    time counted from the retry."""
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv(body=CALLER)),
        (20 * MS, resp(challenge, to_tag="x1")),
        (40 * MS, req("ACK", 1, to_tag="x1")),
        (60 * MS, inv(2, body=CALLER)),
        (80 * MS, resp("100 Trying", "2 INVITE")),
        (200 * MS, resp("180 Ringing", "2 INVITE", to_tag="b2")),
        (1200 * MS, resp("200 OK", "2 INVITE", to_tag="b2", body=CALLEE)),
        (1220 * MS, req("ACK", 2, to_tag="b2")),
        (5200 * MS, req("BYE", 3, to_tag="b2")),
    )
    assert label(recs, "sip.call_state") == [
        "trying", "trying", "trying", "trying", "trying", "ringing", "confirmed", "confirmed",
        "terminated",
    ]  # fmt: skip
    code = challenge.split(maxsplit=1)[0]
    # the challenge is the attempt's final response; the retry starts a new transaction
    assert label(recs, "sip.final_status") == [None, code, code, None, None, None, "200", "200",
                                               "200"]  # fmt: skip
    last = recs[-1].labels
    # setup, ring and duration as the caller lived them: from the first INVITE
    assert (last["sip.ring_ms"], last["sip.answer_ms"], last["sip.duration_ms"]) == (
        "200", "1200", "4000",
    )  # fmt: skip
    assert outcomes(p) == {"created": 1, "terminated": 1, "failed": 0, "cancelled": 0,
                           "timeout": 0, "expired": 0}  # fmt: skip
    st = p.stats()
    assert (st["call_setup.count"], st["call_setup.sum_ms"]) == (1, 1200)
    d = p.dialogs.get(CID)
    assert d is not None
    assert (d.state, d.to_tag) == ("terminated", "b2")


def test_challenge_never_retried_fails_after_the_linger(mode: str) -> None:
    """A 407 the caller does not answer with a new INVITE: the call is counted ``failed`` (not
    ``timeout``) once ``dialog_linger_s`` has passed without a retry."""
    p = SipParser(SipOptions(dialog_linger_s=32, early_timeout_s=300))
    run(
        p,
        (0, inv(body=CALLER)),
        (20 * MS, resp("407 Proxy Authentication Required", to_tag="x1")),
        (40 * MS, req("ACK", 1, to_tag="x1")),
    )
    assert outcomes(p)["failed"] == 0
    p.tick(20 * S)
    assert len(p.dialogs) == 1  # still waiting for the retry
    p.tick(33 * S)
    assert outcomes(p) == {"created": 1, "terminated": 0, "failed": 1, "cancelled": 0,
                           "timeout": 0, "expired": 1}  # fmt: skip
    assert len(p.dialogs) == 0
    assert p.media is not None
    assert p.media.lookup("192.0.2.10", 40000) is None


def test_challenged_then_rejected_is_failed_once(mode: str) -> None:
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv()),
        (20 * MS, resp("407 Proxy Authentication Required", to_tag="x1")),
        (40 * MS, req("ACK", 1, to_tag="x1")),
        (60 * MS, inv(2)),
        (80 * MS, resp("486 Busy Here", "2 INVITE", to_tag="b2")),
    )
    assert label(recs, "sip.call_state")[-1] == "failed"
    assert outcomes(p) == {"created": 1, "terminated": 0, "failed": 1, "cancelled": 0,
                           "timeout": 0, "expired": 0}  # fmt: skip


def test_new_call_after_a_final_failure_still_replaces_it(mode: str) -> None:
    """A Call-ID reused after a real failure (486) is a new call, as before."""
    p = SipParser(SipOptions())
    run(p, (0, inv()), (20 * MS, resp("486 Busy Here", to_tag="x1")),
        (40 * MS, req("ACK", 1, to_tag="x1")), (60 * MS, inv(2)))  # fmt: skip
    assert outcomes(p)["created"] == 2
    assert outcomes(p)["failed"] == 1


# -- retransmissions --------------------------------------------------------------------------


def test_invite_retransmitted_after_its_final_response_is_not_a_new_call(mode: str) -> None:
    """The 486 is lost on the way back: the caller retransmits the INVITE (same CSeq, same From
    tag) and the callee repeats the 486. Before: the retransmission opened a second call
    (dialogs.created 2, dialogs.failed 2, or a call left ``trying`` until it timed out)."""
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv()),
        (400 * MS, resp("486 Busy Here", to_tag="b")),
        (500 * MS, inv()),
        (510 * MS, resp("486 Busy Here", to_tag="b")),
        (520 * MS, req("ACK", 1, to_tag="b")),
    )
    assert label(recs, "sip.call_state") == ["trying", "failed", "failed", "failed", "failed"]
    assert outcomes(p) == {"created": 1, "terminated": 0, "failed": 1, "cancelled": 0,
                           "timeout": 0, "expired": 0}  # fmt: skip
    p.tick(400 * S)
    assert outcomes(p)["timeout"] == 0


def test_serial_forking_downstream_of_the_proxy_shows_the_answered_branch(mode: str) -> None:
    """Between a proxy and the phones of a hunt group: the proxy sends the INVITE (same CSeq and
    From tag, a new Via branch) to the next phone after the first said 486. That is not a
    retransmission: the next phone's call is followed (a new call of the Call-ID, as before
    retransmissions were recognised) and its answer is seen."""
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv(via_branch="z9hG4bKa", start="INVITE sip:bob@phoneA SIP/2.0")),
        (100 * MS, resp("486 Busy Here", to_tag="A", via_branch="z9hG4bKa")),
        (110 * MS, req("ACK", 1, to_tag="A", via_branch="z9hG4bKa")),
        (120 * MS, inv(via_branch="z9hG4bKb", start="INVITE sip:bob@phoneB SIP/2.0")),
        (220 * MS, resp("180 Ringing", to_tag="B", via_branch="z9hG4bKb")),
        (1120 * MS, resp("200 OK", to_tag="B", via_branch="z9hG4bKb")),
    )
    assert label(recs, "sip.call_state") == [
        "trying", "failed", "failed", "trying", "ringing", "confirmed",
    ]  # fmt: skip
    assert recs[-1].labels["sip.answer_ms"] == "1000"
    assert outcomes(p)["created"] == 2
    assert p.stats()["call_setup.count"] == 1


def test_parallel_forking_downstream_of_the_proxy(mode: str) -> None:
    """The proxy rings phone A and phone B at once (one INVITE each: same CSeq and From tag,
    its own Via branch). A's 486 does not end the call while B rings; B's 200 answers it.
    Before: the 486 made the call failed and B's answer was ignored."""
    p = SipParser(SipOptions())
    a, b = "z9hG4bKa", "z9hG4bKb"
    recs = run(
        p,
        (0, inv(via_branch=a, start="INVITE sip:bob@phoneA SIP/2.0")),
        (1 * MS, inv(via_branch=b, start="INVITE sip:bob@phoneB SIP/2.0")),
        (100 * MS, resp("180 Ringing", to_tag="B", via_branch=b)),
        (200 * MS, resp("486 Busy Here", to_tag="A", via_branch=a)),
        (210 * MS, req("ACK", 1, to_tag="A", via_branch=a)),
        (250 * MS, resp("486 Busy Here", to_tag="A", via_branch=a)),  # repeated
        (2000 * MS, resp("200 OK", to_tag="B", via_branch=b)),
    )
    assert label(recs, "sip.call_state") == [
        "trying", "trying", "ringing", "ringing", "ringing", "ringing", "confirmed",
    ]  # fmt: skip
    assert recs[-1].labels["sip.answer_ms"] == "2000"
    assert outcomes(p) == {"created": 1, "terminated": 0, "failed": 0, "cancelled": 0,
                           "timeout": 0, "expired": 0}  # fmt: skip
    d = p.dialogs.get(CID)
    assert d is not None
    assert d.to_tag == "B"


def test_parallel_forking_fails_when_every_branch_failed(mode: str) -> None:
    p = SipParser(SipOptions())
    a, b = "z9hG4bKa", "z9hG4bKb"
    recs = run(
        p,
        (0, inv(via_branch=a)),
        (1 * MS, inv(via_branch=b)),
        (1 * MS, inv(via_branch=a)),  # a retransmission: no third branch
        (200 * MS, resp("486 Busy Here", to_tag="A", via_branch=a)),
        (300 * MS, resp("480 Temporarily Unavailable", to_tag="B", via_branch=b)),
    )
    assert label(recs, "sip.call_state") == ["trying", "trying", "trying", "trying", "failed"]
    assert label(recs, "sip.final_status")[-2:] == [None, "480"]
    assert outcomes(p)["failed"] == 1


def test_final_response_with_another_via_branch_still_ends_a_one_branch_call(mode: str) -> None:
    """A UA that does not copy the INVITE's Via into its response (seen with hand-made
    traffic): the call has one branch, so a final response of its CSeq ends it all the same;
    one of an older CSeq does not."""
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv(via_branch="z9hG4bKa")),
        (100 * MS, resp("486 Busy Here", to_tag="b", via_branch="z9hG4bKother")),
        (0, inv(call_id="c2", via_branch="z9hG4bKa")),
        (10 * MS, resp("407 Proxy Authentication Required", call_id="c2", to_tag="x",
                       via_branch="z9hG4bKa")),
        (20 * MS, inv(2, call_id="c2", via_branch="z9hG4bKb")),
        (30 * MS, resp("486 Busy Here", call_id="c2", to_tag="x", via_branch="z9hG4bKc")),
    )  # fmt: skip
    assert label(recs, "sip.call_state") == [
        "trying", "failed", "trying", "trying", "trying", "trying",
    ]  # fmt: skip
    assert outcomes(p)["failed"] == 1


def test_retransmitted_invite_is_not_the_retry_after_a_challenge(mode: str) -> None:
    """The first INVITE repeated after the 407 (crossing it) does not count as the retry: the
    call still waits for the INVITE with credentials, and fails at the linger without it."""
    p = SipParser(SipOptions(dialog_linger_s=32))
    recs = run(
        p,
        (0, inv()),
        (20 * MS, resp("407 Proxy Authentication Required", to_tag="x1")),
        (30 * MS, inv()),
    )
    assert recs[-1].labels["sip.final_status"] == "407"
    p.tick(40 * S)
    assert outcomes(p)["failed"] == 1


# -- forking ----------------------------------------------------------------------------------


def test_forked_call_keeps_the_answering_branch_tag(mode: str) -> None:
    """Two 180s with different To tags, the second branch answers: the call's dialog is the
    answering branch's (its To tag), not the first provisional one's."""
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv(body=CALLER)),
        (10 * MS, resp("100 Trying")),
        (100 * MS, resp("180 Ringing", to_tag="fork1")),
        (150 * MS, resp("180 Ringing", to_tag="fork2")),
        (900 * MS, resp("200 OK", to_tag="fork2", body=CALLEE)),
        (920 * MS, req("ACK", 1, to_tag="fork2")),
    )
    assert label(recs, "sip.call_state")[-2:] == ["confirmed", "confirmed"]
    assert recs[-1].labels["sip.ring_ms"] == "100"
    assert recs[-1].labels["sip.answer_ms"] == "900"
    d = p.dialogs.get(CID)
    assert d is not None
    assert d.to_tag == "fork2"


# -- re-INVITE: hold, resume, codec and port change --------------------------------------------


def test_reinvite_hold_resume_and_new_port(mode: str) -> None:
    p = SipParser(SipOptions())
    assert p.media is not None
    recs = run(
        p,
        (0, inv(body=CALLER)),
        (100 * MS, resp("200 OK", to_tag="b", body=CALLEE)),
        (110 * MS, req("ACK", 1, to_tag="b")),
        # hold with a=sendonly, then the old style c=0.0.0.0 (RFC 3264 8.4)
        (1 * S, inv(2, to_tag="b", body=sdp("192.0.2.10", 40000, direction="sendonly"))),
        (1 * S, resp("200 OK", "2 INVITE", to_tag="b",
                     body=sdp("192.0.2.20", 50000, direction="recvonly"))),
        (2 * S, inv(3, to_tag="b", body=sdp("192.0.2.10", 40000, conn="0.0.0.0"))),
        (2 * S, resp("200 OK", "3 INVITE", to_tag="b", body=CALLEE)),
        # resume on a new port with another codec; a glare 491 on a further re-INVITE
        (3 * S, inv(4, to_tag="b", body=sdp("192.0.2.10", 40010, codec="8 PCMA"))),
        (3 * S, resp("200 OK", "4 INVITE", to_tag="b", body=sdp("192.0.2.20", 50010,
                                                               codec="8 PCMA"))),
        (4 * S, inv(5, to_tag="b", body=CALLER)),
        (4 * S, resp("491 Request Pending", "5 INVITE", to_tag="b")),
        (5 * S, req("INFO", 6, to_tag="b", body=b"Signal=5\r\nDuration=160\r\n",
                    content_type="application/dtmf-relay")),
    )  # fmt: skip
    assert set(label(recs, "sip.call_state")[1:]) == {"confirmed"}
    assert set(label(recs, "sip.answer_ms")[1:]) == {"100"}
    assert p.stats()["call_setup.count"] == 1
    flows = {(f.ip, f.port): f for f in p.media.flows()}
    # the new endpoints with their codec, the first ones still there
    assert flows[("192.0.2.10", 40010)].codecs == {"8": "PCMA"}
    assert flows[("192.0.2.20", 50010)].codecs == {"8": "PCMA"}
    assert ("192.0.2.10", 40000) in flows
    assert ("192.0.2.20", 50000) in flows
    # c=0.0.0.0 is "send nothing here", not an endpoint: nothing registered on 0.0.0.0
    assert not [f for f in flows if f[0] == "0.0.0.0"], flows


def test_unspecified_ipv6_address_is_not_an_endpoint(mode: str) -> None:
    p = SipParser(SipOptions())
    assert p.media is not None
    body = sdp("192.0.2.10", 40000).replace(b"c=IN IP4 192.0.2.10", b"c=IN IP6 ::")
    run(p, (0, inv(body=body)))
    assert p.media.flows() == []


# -- the flows that work as documented (regressions) ------------------------------------------


def test_cancel_busy_and_bye_from_the_callee(mode: str) -> None:
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, inv(call_id="c1")),
        (10 * MS, resp("180 Ringing", call_id="c1", to_tag="b")),
        (20 * MS, req("CANCEL", 1, call_id="c1")),
        (30 * MS, resp("200 OK", "1 CANCEL", call_id="c1", to_tag="b")),
        (40 * MS, resp("487 Request Terminated", call_id="c1", to_tag="b")),
        (0, inv(call_id="c2")),
        (50 * MS, resp("486 Busy Here", call_id="c2", to_tag="b")),
        (0, inv(call_id="c3")),
        (100 * MS, resp("200 OK", call_id="c3", to_tag="b")),
        (3100 * MS, sip("BYE sip:alice@192.0.2.10 SIP/2.0", call_id="c3", cseq="1 BYE",
                        from_tag="b", to_tag="f1")),
    )  # fmt: skip
    assert label(recs, "sip.call_state")[:5] == [
        "trying", "ringing", "ringing", "ringing", "cancelled",
    ]  # fmt: skip
    assert recs[6].labels["sip.call_state"] == "failed"
    assert recs[-1].labels["sip.call_state"] == "terminated"
    assert recs[-1].labels["sip.duration_ms"] == "3000"
    assert outcomes(p) == {"created": 3, "terminated": 1, "failed": 1, "cancelled": 1,
                           "timeout": 0, "expired": 0}  # fmt: skip


def test_reliable_provisional_and_update_with_sdp(mode: str) -> None:
    """183 with SDP (early media), PRACK, UPDATE with a new offer before the answer."""
    p = SipParser(SipOptions())
    assert p.media is not None
    recs = run(
        p,
        (0, inv(body=CALLER, extra="Supported: 100rel\r\n")),
        (100 * MS, resp("183 Session Progress", to_tag="b", body=CALLEE,
                        extra="Require: 100rel\r\nRSeq: 1\r\n")),
        (120 * MS, req("PRACK", 2, to_tag="b", extra="RAck: 1 1 INVITE\r\n")),
        (140 * MS, resp("200 OK", "2 PRACK", to_tag="b")),
        (160 * MS, req("UPDATE", 3, to_tag="b", body=sdp("192.0.2.10", 40010))),
        (180 * MS, resp("200 OK", "3 UPDATE", to_tag="b", body=sdp("192.0.2.20", 50010))),
        (900 * MS, resp("200 OK", to_tag="b")),
    )  # fmt: skip
    assert label(recs, "sip.call_state") == ["trying"] + ["early"] * 5 + ["confirmed"]
    assert recs[-1].labels["sip.answer_ms"] == "900"
    for ip, port in (("192.0.2.20", 50000), ("192.0.2.10", 40010), ("192.0.2.20", 50010)):
        assert p.media.lookup(ip, port) is not None, (ip, port)


def test_non_invite_transactions_have_no_call_state(mode: str) -> None:
    p = SipParser(SipOptions())
    recs = run(
        p,
        (0, req("OPTIONS", 1, call_id="o")),
        (1, resp("200 OK", "1 OPTIONS", call_id="o", to_tag="t")),
        (2, req("REGISTER", 1, call_id="r", extra="Expires: 3600\r\n")),
        (3, resp("401 Unauthorized", "1 REGISTER", call_id="r", to_tag="t")),
        (4, req("REGISTER", 2, call_id="r", extra="Expires: 3600\r\n")),
        (5, resp("200 OK", "2 REGISTER", call_id="r", to_tag="t")),
        (6, req("MESSAGE", 1, call_id="m", body=b"hi", content_type="text/plain")),
        (7, req("SUBSCRIBE", 1, call_id="s", extra="Event: presence\r\n")),
        (8, req("NOTIFY", 1, call_id="s", extra="Event: presence\r\n")),
    )
    assert label(recs, "sip.call_state") == [None] * 9
    st = p.stats()
    assert (st["method.REGISTER"], st["status_class.4xx"], st["dialogs.created"]) == (2, 1, 0)


def test_compact_headers_call(mode: str) -> None:
    body = CALLER
    m = (
        f"INVITE sip:bob@192.0.2.20 SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKc1\r\n"
        f"f: <sip:alice@example.com>;tag=fa\r\nt: <sip:bob@example.com>\r\ni: {CID}\r\n"
        f"CSeq: 1 INVITE\r\nm: <sip:alice@192.0.2.10>\r\nc: application/sdp\r\n"
        f"l: {len(body)}\r\n\r\n"
    ).encode() + body
    p = SipParser(SipOptions())
    (rec,) = run(p, (0, m))
    assert (rec.labels["sip.call_id"], rec.labels["sip.from_tag"], rec.labels["sip.via_branch"],
            rec.labels["sip.call_state"]) == (CID, "fa", "z9hG4bKc1", "trying")  # fmt: skip
    assert p.media is not None
    assert p.media.lookup("192.0.2.10", 40000) is not None


# -- TCP --------------------------------------------------------------------------------------


def test_tcp_crlf_keepalives_are_counted(mode: str) -> None:
    """RFC 5626 keep-alives on a TCP flow (a double-CRLF ping, a CRLF pong between messages)
    are counted in ``keepalives`` as over UDP. Before: dropped by the framer without a trace."""
    p = SipParser(SipOptions())
    a, b = ("192.0.2.10", 40000), ("192.0.2.20", 5060)

    def ch(src: tuple[str, int], dst: tuple[str, int], data: bytes, t: int) -> StreamChunk:
        return StreamChunk(t, src[0], dst[0], src[1], dst[1], data)

    recs = p.parse_stream(
        [
            ch(a, b, req("OPTIONS", 1, call_id="o"), 0),
            ch(b, a, resp("200 OK", "1 OPTIONS", call_id="o", to_tag="t"), 1),
            ch(a, b, b"\r\n\r\n", 2),
            ch(b, a, b"\r\n", 3),
            ch(a, b, req("OPTIONS", 2, call_id="o"), 4),
        ]
    )
    assert len(recs) == 3
    st = p.stats()
    assert (st["keepalives"], st["messages"], st["rejected"]) == (2, 3, 0)
