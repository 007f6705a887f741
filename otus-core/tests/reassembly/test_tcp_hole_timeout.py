"""A hole nothing will fill (a packet the capture dropped, whose retransmission never comes since
the endpoint got it) is skipped after ``hole_timeout`` of capture time, while the connection
keeps going: a quiet long-lived SIP trunk must not go silent until 256 KiB pile up."""

from __future__ import annotations

from otus._decode.segments import TCP_SYN

from .test_tcp import chunks, reasm, seg, stream

S = 1_000_000_000


def test_a_hole_is_skipped_once_it_is_older_than_the_timeout() -> None:
    r = reasm(hole_timeout="10s")
    r.add([seg(0, flags=TCP_SYN, ts=0), seg(1, b"first", ts=1 * S)])
    # bytes 6..10 never arrive; the connection goes on with a message every second
    out = []
    for i in range(12):
        out += r.add([seg(11 + i, b"x", ts=(2 + i) * S)])
        out += r.tick((2 + i) * S)
    got = chunks(out)
    assert stream(out) == b"x" * 12
    # held from t=2 s, skipped at the first tick 10 s later, then in order again
    assert got[0].gap == 5
    assert got[0].ts_ns == 12 * S
    assert r.stats()["gaps"] == 1
    assert r.stats()["gap_bytes"] == 5
    assert r.stats()["hole_timeouts"] == 1
    assert r.stats()["held_bytes"] == 0


def test_a_hole_filled_in_time_is_not_a_gap() -> None:
    r = reasm(hole_timeout="10s")
    r.add([seg(0, flags=TCP_SYN, ts=0), seg(1, b"first", ts=1 * S)])
    out = r.add([seg(11, b"later", ts=2 * S)])
    out += r.tick(9 * S)
    out += r.add([seg(6, b"LATE!", ts=10 * S)])  # the retransmission
    out += r.tick(30 * S)
    assert stream(out) == b"LATE!later"
    assert r.stats()["gaps"] == 0
    assert r.stats()["hole_timeouts"] == 0


def test_a_new_hole_gets_its_own_time() -> None:
    r = reasm(hole_timeout="10s")
    r.add([seg(0, flags=TCP_SYN, ts=0), seg(1, b"a", ts=0)])
    out = r.add([seg(3, b"c", ts=1 * S)])  # hole at 2, from t=1 s
    out += r.tick(11 * S)  # skipped: 'c' delivered
    out += r.add([seg(5, b"e", ts=12 * S)])  # hole at 4, from t=12 s
    out += r.tick(20 * S)
    assert stream(out) == b"c"
    out += r.tick(22 * S)
    assert stream(out) == b"ce"
    assert r.stats()["hole_timeouts"] == 2
