"""Expiry of the media registry and the dialog table reads only what may have expired; what it
removes must be exactly what a full scan would (the model below), in any order of operations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_builders import dgram, sip

from otus_parser_sip import MediaFlowRegistry, SipOptions
from otus_parser_sip.media import MediaFlow, PyMediaFlowRegistry
from otus_parser_sip.parser import SipParser

S = 1_000_000_000
TTL = 60 * S
LINGER = 5 * S

#: register(call, port), end_call(call), expire(); each step advances capture time 0-3 s
_ops = st.lists(
    st.tuples(
        st.sampled_from(["register", "end", "expire", "remove"]),
        st.integers(0, 5),
        st.integers(0, 7),
        st.integers(0, 3 * S),
    ),
    max_size=80,
)


#: The registry of the parser (the C table when the extension is built) and the pure-Python one.
REGISTRIES = pytest.mark.parametrize(
    "registry", [MediaFlowRegistry, PyMediaFlowRegistry], ids=["default", "python"]
)


@REGISTRIES
@settings(max_examples=300, deadline=None)
@given(ops=_ops)
def test_media_expiry_removes_exactly_what_a_full_scan_would(
    registry: type[PyMediaFlowRegistry], ops: list[tuple[str, int, int, int]]
) -> None:
    reg = registry(max_flows=1000)
    model: dict[tuple[str, int], tuple[str, int]] = {}  # key -> (call, expiry)
    now = 0
    for op, call, port, step in ops:
        now += step
        cid = f"call-{call}"
        key = ("10.0.0.1", 1000 + port)
        if op == "register":
            reg.register(MediaFlow(*key, "rtp", cid, "audio", {}, now + TTL))
            model[key] = (cid, now + TTL)
        elif op == "end":
            reg.end_call(cid, now + LINGER)
            for k, (c, exp) in model.items():
                if c == cid:
                    model[k] = (c, min(exp, now + LINGER))
        elif op == "remove":
            reg.remove_call(cid)
            model = {k: v for k, v in model.items() if v[0] != cid}
        else:
            expected = sum(1 for _, exp in model.values() if exp <= now)
            assert reg.expire(now) == expected
            model = {k: v for k, v in model.items() if v[1] > now}
        assert {(f.ip, f.port): (f.call_id, f.expires_ns) for f in reg.flows()} == model
        assert len(reg.calls()) == len({c for c, _ in model.values()})


@REGISTRIES
def test_a_call_that_ended_is_expired_ahead_of_older_live_flows(
    registry: type[PyMediaFlowRegistry],
) -> None:
    reg = registry()
    reg.register(MediaFlow("10.0.0.1", 1000, "rtp", "old", "audio", {}, 100 * S))
    reg.register(MediaFlow("10.0.0.1", 2000, "rtp", "short", "audio", {}, 200 * S))
    reg.end_call("short", 10 * S)
    assert reg.expire(9 * S) == 0
    assert reg.expire(10 * S) == 1
    assert reg.lookup("10.0.0.1", 2000) is None
    assert reg.lookup("10.0.0.1", 1000) is not None
    assert reg.expire(100 * S) == 1
    assert len(reg) == 0
    assert not reg.ended()


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from(["INVITE", "180", "200", "BYE", "486"]),
            st.integers(0, 40 * S),
        ),
        max_size=40,
    ),
    tick_every=st.integers(1, 5),
)
def test_dialog_expiry_removes_exactly_what_a_full_scan_would(
    steps: list[tuple[int, str, int]], tick_every: int
) -> None:
    options = SipOptions(dialog_linger_s=30, early_timeout_s=60, dialog_timeout_s=120)
    p = SipParser(options)
    t = S
    for n, (call, what, step) in enumerate(steps):
        t += step
        cid = f"c{call}"
        if what == "INVITE":
            msg = sip(call_id=cid)
        elif what == "BYE":
            msg = sip("BYE sip:bob@example.com SIP/2.0", call_id=cid, cseq="2 BYE", to_tag="b")
        else:
            reason = {"180": "Ringing", "200": "OK", "486": "Busy Here"}[what]
            msg = sip(f"SIP/2.0 {what} {reason}", call_id=cid, to_tag="b")
        p.parse([dgram(msg, ts_ns=t)])
        if n % tick_every == 0:
            table = p.dialogs
            limits = {"terminated": table.linger_ns, "failed": table.linger_ns,
                      "cancelled": table.linger_ns, "confirmed": table.confirmed_ns}  # fmt: skip
            live = {
                d.call_id
                for d in table.calls.values()
                if t - d.last_ns < limits.get(d.state, table.early_ns)
            }
            gone = {d.call_id for d in table.expire(t)}
            assert set(table.calls) == live
            assert not gone & live


def test_a_bye_through_the_batch_path_queues_the_call_for_expiry() -> None:
    """sip_media.c's end_call queues the ended call as MediaFlowRegistry.end_call does: the
    registry alone expires the call's flows after the linger time (the media timeout is
    hours)."""
    from sip_builders import SDP

    p = SipParser(SipOptions(dialog_linger_s=32))
    reg = p.media
    assert reg is not None
    p.parse([dgram(sip(body=SDP), ts_ns=1 * S)])
    p.parse([dgram(sip("SIP/2.0 200 OK", to_tag="b1", body=SDP.replace(b"49170", b"30000")),
                   ts_ns=2 * S)])  # fmt: skip
    p.parse([dgram(sip("BYE sip:bob@x SIP/2.0", cseq="2 BYE", to_tag="b1"), ts_ns=60 * S)])
    assert reg.ended() == [(92 * S, "abc123@192.0.2.10")]
    assert reg.expire(91 * S) == 0
    assert reg.expire(92 * S) == 4  # RTP and RTCP of both sides
    assert len(reg) == 0
