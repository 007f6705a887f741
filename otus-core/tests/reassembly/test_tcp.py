"""TCP stream reassembly: ordering, retransmissions, overlaps, gaps, closing, bounds."""

from __future__ import annotations

from otus._decode.options import TcpReassemblyOptions
from otus._decode.segments import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpSegment
from otus._reassembly.tcp import TcpReassembler
from otus.parsing import StreamChunk

CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 5060)


def seg(
    seq: int,
    data: bytes = b"",
    flags: int = TCP_ACK | TCP_PSH,
    *,
    ts: int = 0,
    reverse: bool = False,
    parser: int = 0,
) -> TcpSegment:
    (sip, sport), (dip, dport) = (SERVER, CLIENT) if reverse else (CLIENT, SERVER)
    return TcpSegment(ts, sip, dip, sport, dport, seq & 0xFFFFFFFF, 0, flags, data, parser)


def chunks(out: list[tuple[int, StreamChunk]], *, reverse: bool = False) -> list[StreamChunk]:
    src = SERVER if reverse else CLIENT
    return [c for _, c in out if (c.src_ip, c.src_port) == src]


def stream(out: list[tuple[int, StreamChunk]], *, reverse: bool = False) -> bytes:
    return b"".join(c.data for c in chunks(out, reverse=reverse))


def reasm(**options: object) -> TcpReassembler:
    return TcpReassembler(TcpReassemblyOptions.model_validate(options))


def test_in_order_after_handshake_starts_without_gap() -> None:
    r = reasm()
    out = r.add([seg(999, flags=TCP_SYN), seg(1000, b"INVITE "), seg(1007, b"sip:a SIP/2.0\r\n")])
    got = chunks(out)
    assert [c.data for c in got] == [b"INVITE ", b"sip:a SIP/2.0\r\n"]
    assert [c.gap for c in got] == [0, 0]
    assert got[0].flow == (*CLIENT, *SERVER)
    assert r.stats()["bytes"] == 22
    assert r.stats()["active_flows"] == 1


def test_out_of_order_is_held_then_delivered_in_one_chunk() -> None:
    r = reasm()
    out = r.add([seg(0, flags=TCP_SYN), seg(3, b"cd"), seg(5, b"ef")])
    assert stream(out) == b""
    assert r.stats()["out_of_order_held"] == 2
    assert r.stats()["held_bytes"] == 4
    out = r.add([seg(1, b"ab", ts=7)])
    assert [c.data for c in chunks(out)] == [b"abcdef"]
    assert chunks(out)[0].ts_ns == 7
    assert r.stats()["held_bytes"] == 0


def test_retransmission_is_dropped_and_counted() -> None:
    r = reasm()
    out = r.add([seg(0, flags=TCP_SYN), seg(1, b"hello"), seg(1, b"hello"), seg(6, b"!")])
    assert stream(out) == b"hello!"
    assert r.stats()["retransmissions"] == 1


def test_overlap_first_data_wins() -> None:
    r = reasm()
    # held "CD" at 3..5 first, then "xbcdeY" covering 1..7: the held bytes win
    out = r.add([seg(0, flags=TCP_SYN), seg(3, b"CD"), seg(1, b"abXXef")])
    assert stream(out) == b"abCDef"
    # delivered bytes win too: a retransmission with other content changes nothing
    out += r.add([seg(5, b"ZZgh")])
    assert stream(out) == b"abCDefgh"
    assert r.stats()["overlaps"] == 2


def test_several_messages_and_both_directions() -> None:
    r = reasm()
    msgs = [b"REGISTER sip:x SIP/2.0\r\n\r\n", b"OPTIONS sip:x SIP/2.0\r\n\r\n"]
    replies = [b"SIP/2.0 200 OK\r\n\r\n"] * 2
    out = r.add([seg(99, flags=TCP_SYN), seg(499, flags=TCP_SYN | TCP_ACK, reverse=True)])
    cseq, sseq = 100, 500
    for m, rep in zip(msgs, replies, strict=True):
        out += r.add([seg(cseq, m), seg(sseq, rep, reverse=True)])
        cseq += len(m)
        sseq += len(rep)
    assert stream(out) == b"".join(msgs)
    assert stream(out, reverse=True) == b"".join(replies)


def test_mid_stream_join_starts_at_first_segment_with_unknown_gap() -> None:
    r = reasm()
    out = r.add([seg(123456, b"tail of something"), seg(123473, b" more")])
    got = chunks(out)
    assert [c.gap for c in got] == [-1, 0]
    assert stream(out) == b"tail of something more"
    # pure ACKs of a flow never seen carry nothing: no state is created
    assert r.add([seg(5, reverse=True, flags=TCP_ACK)]) == [] or r.stats()["active_flows"] == 1
    assert r.stats()["ignored"] == 0  # the reverse direction of a known flow is not ignored


def test_pure_ack_of_unknown_flow_is_ignored() -> None:
    r = reasm()
    assert r.add([seg(5, flags=TCP_ACK)]) == []
    assert r.stats()["ignored"] == 1
    assert r.stats()["active_flows"] == 0


def test_hole_beyond_bound_is_skipped_as_gap() -> None:
    r = reasm(max_out_of_order_bytes_per_flow=100)
    out = r.add([seg(0, flags=TCP_SYN), seg(1, b"a" * 10)])
    # bytes 11..20 are lost; 60 + 60 bytes after the hole exceed the bound of 100
    out += r.add([seg(21, b"b" * 60), seg(81, b"c" * 60)])
    got = chunks(out)
    assert got[-1].gap == 10
    assert stream(out) == b"a" * 10 + b"b" * 60 + b"c" * 60
    s = r.stats()
    assert (s["gaps"], s["gap_bytes"], s["evicted.ooo_limit"]) == (1, 10, 1)
    assert s["held_bytes"] == 0


def test_fin_closes_each_direction_and_then_the_flow() -> None:
    r = reasm()
    out = r.add(
        [
            seg(0, flags=TCP_SYN),
            seg(1, b"bye", flags=TCP_ACK | TCP_FIN),
            seg(70, b"ok", reverse=True),
        ]
    )
    client = chunks(out)
    assert [(c.data, c.end) for c in client] == [(b"bye", False), (b"", True)]
    assert r.stats()["active_flows"] == 1
    out = r.add([seg(72, flags=TCP_FIN | TCP_ACK, reverse=True)])
    assert [(c.data, c.end) for c in chunks(out, reverse=True)] == [(b"", True)]
    s = r.stats()
    assert (s["active_flows"], s["closed.fin"]) == (0, 1)


def test_fin_before_missing_data_waits_for_it() -> None:
    r = reasm()
    out = r.add([seg(0, flags=TCP_SYN), seg(4, b"def", flags=TCP_FIN | TCP_ACK)])
    assert out == []
    out = r.add([seg(1, b"abc")])
    assert [(c.data, c.end) for c in chunks(out)] == [(b"abcdef", False), (b"", True)]


def test_rst_closes_both_directions_delivering_held_data_with_gap() -> None:
    r = reasm()
    out = r.add([seg(0, flags=TCP_SYN), seg(1, b"ab"), seg(10, b"zz"), seg(50, b"x", reverse=True)])
    out += r.add([seg(3, flags=TCP_RST)])
    client = chunks(out)
    assert [(c.data, c.gap, c.end) for c in client] == [
        (b"ab", 0, False),
        (b"zz", 7, False),
        (b"", 0, True),
    ]
    assert chunks(out, reverse=True)[-1].end
    s = r.stats()
    assert (s["closed.rst"], s["active_flows"], s["gaps"], s["gap_bytes"]) == (1, 0, 1, 7)


def test_idle_timeout_closes_flows_by_capture_time() -> None:
    r = reasm(idle_timeout="10s")
    r.add([seg(0, flags=TCP_SYN, ts=1_000_000_000), seg(1, b"a", ts=1_000_000_000)])
    assert r.tick(5_000_000_000) == []
    out = r.tick(12_000_000_000)
    assert [(c.end, c.ts_ns) for c in chunks(out)] == [(True, 12_000_000_000)]
    assert r.stats()["closed.idle"] == 1
    assert r.stats()["active_flows"] == 0


def test_close_flushes_everything() -> None:
    r = reasm()
    r.add([seg(0, flags=TCP_SYN), seg(5, b"later")])
    out = r.close()
    assert [(c.data, c.gap, c.end) for c in chunks(out)] == [(b"later", 4, False), (b"", 0, True)]
    assert r.stats()["closed.end"] == 1


def test_memory_cap_evicts_least_recently_active_flows() -> None:
    r = reasm(max_memory=1000, max_out_of_order_bytes_per_flow=100_000)
    old = TcpSegment(0, "10.9.9.9", "10.0.0.2", 1111, 5060, 0, 0, TCP_SYN, b"")
    held_old = TcpSegment(1, "10.9.9.9", "10.0.0.2", 1111, 5060, 100, 0, TCP_ACK, b"o" * 600)
    r.add([old, held_old])
    out = r.add([seg(0, flags=TCP_SYN, ts=2), seg(100, b"n" * 600, ts=3)])
    evicted = [c for _, c in out if c.src_ip == "10.9.9.9"]
    assert [(c.data, c.gap, c.end) for c in evicted] == [(b"o" * 600, 99, False), (b"", 0, True)]
    s = r.stats()
    assert (s["evicted.memory"], s["active_flows"], s["held_bytes"]) == (1, 1, 600)


def test_max_flows_evicts_the_oldest_flow() -> None:
    r = reasm(max_flows=2)
    for port in (1, 2, 3):
        r.add([TcpSegment(port, "10.0.0.9", "10.0.0.2", port, 80, 0, 0, TCP_SYN, b"")])
    s = r.stats()
    assert (s["active_flows"], s["evicted.max_flows"]) == (2, 1)


def test_sequence_wrap_around() -> None:
    r = reasm()
    isn = 0xFFFFFFF0
    data = bytes(range(64))
    segs = [seg(isn, flags=TCP_SYN)]
    for off in range(0, 64, 8):
        segs.append(seg(isn + 1 + off, data[off : off + 8]))
    segs[3], segs[5] = segs[5], segs[3]  # some out of order across the wrap
    out = r.add(segs)
    assert stream(out) == data
    assert r.stats()["gaps"] == 0


def test_syn_with_new_isn_starts_a_new_connection() -> None:
    r = reasm()
    out = r.add([seg(0, flags=TCP_SYN), seg(1, b"first")])
    out += r.add([seg(5000, flags=TCP_SYN), seg(5001, b"second")])
    assert [(c.data, c.end) for c in chunks(out)] == [
        (b"first", False),
        (b"", True),
        (b"second", False),
    ]
    assert r.stats()["closed.reuse"] == 1


def test_parser_index_is_carried_per_flow() -> None:
    r = reasm()
    out = r.add(
        [
            seg(0, b"a", parser=2),
            TcpSegment(0, "10.5.5.5", "10.0.0.2", 9, 5061, 0, 0, TCP_ACK, b"b", 1),
        ]
    )
    assert sorted((p, c.data) for p, c in out) == [(1, b"b"), (2, b"a")]
