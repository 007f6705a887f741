"""Call state from the dialog table and the media flow registry fed by SDP."""

from __future__ import annotations

import gc

import pytest
from sip_builders import SDP, dgram, sip

from otus import PluginContext
from otus.testing import need
from otus_parser_sip import MediaFlowRegistry, SipOptions, _scan
from otus_parser_sip import parser as parser_module
from otus_parser_sip._dialogs import Dialog
from otus_parser_sip.media import MediaFlow, PyMediaFlowRegistry
from otus_parser_sip.parser import SipParser

S = 1_000_000_000
ANSWER = (
    SDP.replace(b"192.0.2.10", b"192.0.2.20")
    .replace(b"49170", b"30000")
    .replace(b"a=sendrecv\r\n", b"a=rtcp:30011\r\n")
)


def feed(p: SipParser, *msgs: tuple[int, bytes]) -> list:  # type: ignore[type-arg]
    return [r for t, m in msgs for r in p.parse([dgram(m, ts_ns=t)])]


def states(recs: list) -> list[str]:  # type: ignore[type-arg]
    return [r.labels["sip.call_state"] for r in recs]


def test_answered_call_states_times_and_media() -> None:
    ctx = PluginContext()
    p = SipParser(SipOptions(), ctx)
    reg = ctx.shared["media_flows"]
    assert isinstance(reg, MediaFlowRegistry)
    recs = feed(
        p,
        (1 * S, sip(body=SDP)),
        (1 * S + 10_000_000, sip("SIP/2.0 100 Trying")),
        (2 * S, sip("SIP/2.0 180 Ringing", to_tag="b1")),
        (5 * S, sip("SIP/2.0 200 OK", to_tag="b1", body=ANSWER)),
        (5 * S, sip("ACK sip:bob@x SIP/2.0", cseq="1 ACK", to_tag="b1")),
        (65 * S, sip("BYE sip:bob@x SIP/2.0", cseq="2 BYE", to_tag="b1")),
    )
    assert states(recs) == ["trying", "trying", "ringing", "confirmed", "confirmed", "terminated"]
    last = recs[-1].labels
    assert (last["sip.ring_ms"], last["sip.answer_ms"], last["sip.duration_ms"]) == (
        "1000",
        "4000",
        "60000",
    )
    assert last["sip.final_status"] == "200"
    assert last["sip.caller"] == "alice"
    assert last["sip.callee"] == "bob"
    assert reg.lookup("192.0.2.10", 49170).kind == "rtp"  # type: ignore[union-attr]
    assert reg.lookup("192.0.2.10", 49171).kind == "rtcp"  # type: ignore[union-attr]
    assert reg.lookup("192.0.2.20", 30000).call_id == "abc123@192.0.2.10"  # type: ignore[union-attr]
    assert reg.lookup("192.0.2.20", 30011).kind == "rtcp"  # type: ignore[union-attr]
    # Ended: flows and the dialog go after the linger time.
    p.tick(65 * S + 33 * S)
    assert len(reg) == 0
    assert p.stats()["dialogs.active"] == 0
    assert p.stats()["dialogs.terminated"] == 1


def test_cancelled_busy_and_early_media() -> None:
    p = SipParser(SipOptions())
    c = feed(
        p,
        (1 * S, sip(call_id="c")),
        (2 * S, sip("SIP/2.0 183 Session Progress", call_id="c", to_tag="t", body=ANSWER)),
        (3 * S, sip("CANCEL sip:bob@x SIP/2.0", call_id="c", cseq="1 CANCEL")),
        (3 * S, sip("SIP/2.0 487 Request Terminated", call_id="c", to_tag="t")),
    )
    assert states(c) == ["trying", "early", "early", "cancelled"]
    assert p.media is not None
    assert p.media.lookup("192.0.2.20", 30000) is not None
    b = feed(
        p, (1 * S, sip(call_id="b")), (2 * S, sip("SIP/2.0 486 Busy Here", call_id="b", to_tag="t"))
    )
    assert states(b) == ["trying", "failed"]
    assert b[-1].labels["sip.final_status"] == "486"


def test_reinvite_keeps_the_call_confirmed_and_updates_media() -> None:
    p = SipParser(SipOptions())
    moved = SDP.replace(b"49170", b"50000")
    recs = feed(
        p,
        (1 * S, sip()),
        (2 * S, sip("SIP/2.0 200 OK", to_tag="t")),
        (3 * S, sip("ACK sip:b@x SIP/2.0", cseq="1 ACK", to_tag="t", body=SDP)),  # late offer
        (4 * S, sip(cseq="2 INVITE", to_tag="t", body=moved)),
        (4 * S, sip("SIP/2.0 491 Request Pending", cseq="2 INVITE", to_tag="t")),
    )
    assert states(recs) == ["trying", "confirmed", "confirmed", "confirmed", "confirmed"]
    assert p.media is not None
    assert p.media.lookup("192.0.2.10", 49170) is not None
    assert p.media.lookup("192.0.2.10", 50000) is not None


def test_non_invite_has_no_call_state_and_labels_can_be_off() -> None:
    p = SipParser(SipOptions())
    (r,) = feed(p, (S, sip("REGISTER sip:x SIP/2.0", cseq="1 REGISTER")))
    assert "sip.call_state" not in r.labels
    q = SipParser(SipOptions(include_dialog_labels=False))
    (r,) = feed(q, (S, sip()))
    assert "sip.call_state" not in r.labels


def test_dialog_table_is_bounded_and_times_out() -> None:
    p = SipParser(SipOptions(max_dialogs=10, early_timeout_s=5))
    for i in range(50):
        feed(p, (S, sip(call_id=f"c{i}")))
    st = p.stats()
    assert (st["dialogs.active"], st["dialogs.evicted"]) == (10, 40)
    p.tick(10 * S)
    assert p.stats()["dialogs.active"] == 0
    assert p.stats()["dialogs.timeout"] == 10


def test_media_registry_bounds_and_expiry() -> None:
    reg = MediaFlowRegistry(max_flows=3)
    for port in range(10):
        reg.register(MediaFlow("10.0.0.1", 1000 + port, "rtp", "c", "audio", {}, 100))
    assert len(reg) == 3
    assert reg.evicted == 7
    assert reg.lookup("10.0.0.1", 1009) is not None
    assert reg.expire(100) == 3
    assert len(reg) == 0


def test_media_registry_off() -> None:
    ctx = PluginContext()
    p = SipParser(SipOptions(media_registry=False), ctx)
    feed(p, (S, sip(body=SDP)))
    assert "media_flows" not in ctx.shared


def test_c_built_calls_and_flows_are_out_of_the_cyclic_gc() -> None:
    """The dialog table and the media registry are C tables, which keep their calls and flows
    as plain structs (no Python object per call or flow for the collector to walk) and build
    handles and equal MediaFlow objects on demand."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    ctx = PluginContext()
    p = SipParser(SipOptions(), ctx)
    reg = ctx.shared["media_flows"]
    assert isinstance(reg, MediaFlowRegistry)
    assert not isinstance(reg, PyMediaFlowRegistry)
    feed(p, (1 * S, sip(body=SDP)), (2 * S, sip("SIP/2.0 200 OK", to_tag="b1", body=ANSWER)))
    gc.collect()
    # the calls are plain structs of the C dialog table: its only referents are its classes
    store = p.dialogs.store  # type: ignore[attr-defined]
    assert gc.get_referents(store) == [
        type(store),
        type(p.dialogs.get("abc123@192.0.2.10")),
        Dialog,
    ]
    assert [(d.call_id, d.state) for d in p.dialogs.calls.values()] == [
        ("abc123@192.0.2.10", "confirmed")
    ]
    assert len(reg) == 4
    # its class and the class it builds flows with, nothing else
    assert gc.get_referents(reg) == [type(reg), MediaFlow]
    flow = reg.lookup("192.0.2.20", 30011)
    assert flow is not None
    assert flow.kind == "rtcp"
    assert flow.codecs
    assert flow == reg.lookup("192.0.2.20", 30011)
    assert flow is not reg.lookup("192.0.2.20", 30011)
    assert sorted(reg.flows_of("abc123@192.0.2.10"), key=lambda f: f.port) == sorted(
        reg.flows(), key=lambda f: f.port
    )


def test_a_registry_subclass_overriding_register_is_called_by_the_batch_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch path writes the C table directly only when its ``register`` and ``end_call``
    are the table's own; a subclass that overrides them gets every call, as from Python."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    seen: list[tuple[str, int]] = []

    class Watching(MediaFlowRegistry):
        __slots__ = ()

        def register(self, flow: MediaFlow) -> None:
            seen.append((flow.ip, flow.port))
            super().register(flow)

    monkeypatch.setattr(parser_module, "MediaFlowRegistry", Watching)
    p = SipParser(SipOptions())
    feed(p, (1 * S, sip(body=SDP)), (2 * S, sip("SIP/2.0 200 OK", to_tag="b1", body=ANSWER)))
    assert type(p.media) is Watching
    assert sorted(seen) == sorted((f.ip, f.port) for f in p.media.flows())
    assert len(seen) == 4


# -- the C dialog table (_native/sip_dialog.c) and its handles --------------------------------

_FIELDS = list(Dialog.__slots__)


def _fields(d: object) -> list[tuple[str, object]]:
    return [(f, getattr(d, f)) for f in _FIELDS]


def _pair(options: SipOptions, monkeypatch: pytest.MonkeyPatch) -> tuple[SipParser, SipParser]:
    """A parser on the C dialog table and one on the pure-Python table."""
    need(_scan.fast_available(), "the otus_parser_sip C extension is not built")
    c = SipParser(options)
    _scan.set_enabled(False)
    try:
        py = SipParser(options)
    finally:
        _scan.set_enabled(True)
    assert type(c.dialogs) is not type(py.dialogs)
    return c, py


def _feed_both(c: SipParser, py: SipParser, msgs: list[tuple[int, bytes]]) -> list[bool]:
    """Both parsers' records have the same labels; whether the C parser's came as JSON (the
    batch path) or as a dict (Python), per record."""
    out_c = feed(c, *msgs)
    batch = [r.serialized_labels() is not None for r in out_c]
    _scan.set_enabled(False)
    try:
        out_py = feed(py, *msgs)
    finally:
        _scan.set_enabled(True)
    assert [r.labels for r in out_c] == [r.labels for r in out_py]
    return batch


def test_a_handle_is_one_per_call_and_reads_an_evicted_call_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """get() gives the same handle while the call lives; once the call is evicted (or
    expired), the handle reads and writes the call as it was, like the pure-Python table's
    Dialog object, and the table no longer sees it."""
    c, py = _pair(SipOptions(max_dialogs=2), monkeypatch)
    _feed_both(
        c,
        py,
        [(1 * S, sip(call_id="a")), (2 * S, sip("SIP/2.0 180 Ringing", call_id="a", to_tag="t"))],
    )
    h, d = c.dialogs.get("a"), py.dialogs.get("a")
    assert h is c.dialogs.get("a")
    assert h is not None
    assert d is not None
    assert h._alive  # type: ignore[attr-defined]
    _feed_both(c, py, [(3 * S, sip(call_id="b")), (4 * S, sip(call_id="c"))])
    assert c.dialogs.get("a") is None
    assert py.dialogs.get("a") is None
    assert not h._alive  # type: ignore[attr-defined]
    assert _fields(h) == _fields(d)
    assert _fields(h)[-2:] == [("state", "ringing"), ("to_tag", "t")]
    h.caller = d.caller = "carol"  # changes the copy only
    assert h.caller == "carol"
    assert [x.as_dict() for x in c.dialogs.calls.values()] == [
        x.as_dict() for x in py.dialogs.calls.values()
    ]
    dead_c, dead_py = c.dialogs.expire(10**6 * S), py.dialogs.expire(10**6 * S)
    assert [_fields(x) for x in dead_c] == [_fields(x) for x in dead_py]
    assert [x.call_id for x in dead_c] == ["b", "c"]
    assert len(c.dialogs) == 0
    assert c.stats() == py.stats()


@pytest.mark.parametrize(
    ("field", "value"),
    [("caller", "x" * 57), ("caller", 5), ("invite_ns", 2**63), ("state", "odd"),
     ("final_status", True), ("cancel_seen", 1), ("call_id", "other"), ("to_tag", "t" * 41),
     ("invite_cseq", 2**32), ("invite_branches", (1, 2, 3, 4, 5)), ("invite_branches", [1]),
     ("invite_branches", (2**64,)), ("branches_done", 16)],
)  # fmt: skip
def test_values_a_slot_cannot_hold_move_the_call_to_python_and_back(
    field: str, value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the C table's slot cannot hold, set from Python, moves the call into a Dialog:
    its messages go to Python (labels as a dict) with the pure-Python table's results; once
    its values fit again, the batch path takes its messages again."""
    c, py = _pair(SipOptions(), monkeypatch)
    _feed_both(c, py, [(1 * S, sip())])
    h, d = c.dialogs.get("abc123@192.0.2.10"), py.dialogs.get("abc123@192.0.2.10")
    assert h is not None
    assert d is not None
    old = getattr(d, field)
    setattr(h, field, value)
    setattr(d, field, value)
    assert _fields(h) == _fields(d)
    ringing = sip("SIP/2.0 180 Ringing", to_tag="b1")
    assert _feed_both(c, py, [(2 * S, ringing)]) == [False]  # Python did it
    assert _fields(h) == _fields(d)
    setattr(h, field, old)
    setattr(d, field, old)
    assert _feed_both(c, py, [(3 * S, sip("SIP/2.0 200 OK", to_tag="b1"))]) == [True]
    assert _fields(h) == _fields(d)


def test_long_call_ids_tags_and_parties_give_the_pure_python_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Call-ID past the slot's inline room (kept on the heap), tags and parties past theirs
    (the messages go to Python, the call into a Dialog): the same records and dialogs."""
    c, py = _pair(SipOptions(max_dialogs=3), monkeypatch)
    msgs = []
    for k, (cid, tag, user) in enumerate(
        [
            ("c" * 81, "f1", "alice"),
            ("d" * 300, "t" * 41, "bob"),
            ("e", "f2", "u" * 57),
            ("f" * 80, "t" * 40, "u" * 56),
        ]
    ):
        invite = sip(call_id=cid, from_tag=tag).replace(b"alice", user.encode())
        ok = sip("SIP/2.0 200 OK", call_id=cid, from_tag=tag, to_tag="b").replace(
            b"alice", user.encode()
        )
        bye = sip("BYE sip:bob@x SIP/2.0", call_id=cid, cseq="2 BYE", from_tag=tag, to_tag="b")
        msgs += [((3 * k + 1) * S, invite), ((3 * k + 2) * S, ok), ((3 * k + 3) * S, bye)]
    _feed_both(c, py, msgs)
    assert [_fields(x) for x in c.dialogs.calls.values()] == [
        _fields(x) for x in py.dialogs.calls.values()
    ]
    assert c.stats() == py.stats()
