"""Property tests: generated valid messages round-trip; random bytes never crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sip_builders import chunk, dgram

from otus_parser_sip import SipOptions
from otus_parser_sip.parser import SipParser

TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=20,
)
WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~()<>:\\\"/[]?{}",
    min_size=1,
    max_size=30,
)
HOST = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}\Z")
USER = st.from_regex(r"\A[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,16}\Z")
COMPACT = st.booleans()


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    is_req = draw(st.booleans())
    method = draw(TOKEN)
    code = draw(st.integers(100, 699))
    reason = draw(st.text(alphabet="abcdefghij KLMNOP", max_size=20)).strip()
    call_id = draw(WORD)
    cseq = draw(st.integers(0, 2**32 - 1))
    ftag, ttag = draw(TOKEN), draw(st.none() | TOKEN)
    fu, tu = draw(USER), draw(USER)
    fh, th = draw(HOST), draw(HOST)
    branch = "z9hG4bK" + draw(TOKEN)
    port = draw(st.integers(1, 65535))
    c = draw(COMPACT)
    body = draw(st.binary(max_size=200))
    start = f"{method} sip:{tu}@{th} SIP/2.0" if is_req else f"SIP/2.0 {code} {reason}"
    lines = [
        start,
        f"{'v' if c else 'Via'}: SIP/2.0/UDP {fh}:{port};branch={branch}",
        f"{'f' if c else 'From'}: <sip:{fu}@{fh}>;tag={ftag}",
        # An addr-spec holding ; , or ? must be enclosed in <> (RFC 3261 20.10).
        f"{'t' if c else 'To'}: "
        + (f"<sip:{tu}@{th}>" if set(tu) & set(";,?") else f"sip:{tu}@{th}")
        + (f";tag={ttag}" if ttag else ""),
        f"{'i' if c else 'Call-ID'}: {call_id}",
        f"CSeq: {cseq} {method}",
        f"{'l' if c else 'Content-Length'}: {len(body)}",
    ]
    msg = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    want: dict[str, object] = {
        "sip.call_id": call_id,
        "sip.cseq": f"{cseq} {method}",
        "sip.from_uri": f"sip:{fu}@{fh}",
        "sip.to_uri": f"sip:{tu}@{th}",
        "sip.from_tag": ftag,
        "sip.to_tag": ttag,
        "sip.via_branch": branch,
        "sip.method": method,
        "sip.status_code": None if is_req else str(code),
    }
    return msg, want


@settings(max_examples=300, deadline=None)
@given(messages(), st.integers(1, 50))
def test_generated_messages_round_trip(case: tuple[bytes, dict[str, object]], cut: int) -> None:
    msg, want = case
    for records in (
        SipParser(SipOptions()).parse([dgram(msg)]),
        SipParser(SipOptions()).parse_stream([chunk(msg[:cut]), chunk(msg[cut:])]),
    ):
        (rec,) = records
        got = {k: rec.labels.get(k) for k in want}
        assert got == want
        assert rec.raw_payload == msg


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data: bytes) -> None:
    p = SipParser(SipOptions())
    p.parse([dgram(data), dgram(b"INVITE sip:x SIP/2.0\r\n" + data)])
    p.parse_stream([chunk(data), chunk(data, gap=-1), chunk(b"SIP/2.0 200 OK\r\n" + data)])
    assert p.stats()["messages"] >= 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"\r\n",
                b"SIP/2.0 ",
                b"INVITE ",
                b"l: 5\r\n",
                b":",
                b";tag=",
                b'"',
                b"<",
                b">",
                b"x",
                b"\r\n\r\n",
                b"Call-ID: a\r\n",
                b"f: <sip:a@b>\r\n",
                b"t: c\r\n",
                b"CSeq: 1 X\r\n",
                b"v: SIP/2.0/UDP h\r\n",
            ]
        ),
        max_size=60,
    )
)
def test_sip_shaped_noise_never_crashes(parts: list[bytes]) -> None:
    data = b"".join(parts)
    p = SipParser(SipOptions())
    p.parse([dgram(data)])
    p.parse_stream([chunk(data[i : i + 7]) for i in range(0, len(data), 7)])
