"""Property: any permutation and duplication of a stream's segments reassembles to the stream."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otus._decode.options import TcpReassemblyOptions
from otus._decode.segments import TCP_ACK, TCP_FIN, TCP_SYN, TcpSegment
from otus._reassembly.tcp import TcpReassembler


@st.composite
def shuffled_stream(draw: st.DrawFn) -> tuple[bytes, int, list[TcpSegment]]:
    data = draw(st.binary(min_size=1, max_size=400))
    isn = draw(st.integers(0, 0xFFFFFFFF))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data)), max_size=20))) | {len(data)})
    segs, start = [], 0
    for cut in cuts:
        segs.append((start, data[start:cut]))
        start = cut
    # retransmissions of arbitrary (possibly overlapping) ranges with the same bytes
    for _ in range(draw(st.integers(0, 5))):
        a = draw(st.integers(0, len(data) - 1))
        b = draw(st.integers(a + 1, len(data)))
        segs.append((a, data[a:b]))
    order = draw(st.permutations(range(len(segs))))
    out = [TcpSegment(0, "1.1.1.1", "2.2.2.2", 1, 2, isn, 0, TCP_SYN, b"")]
    for i in order:
        off, chunk = segs[i]
        out.append(TcpSegment(i, "1.1.1.1", "2.2.2.2", 1, 2, (isn + 1 + off) & 0xFFFFFFFF, 0,
                              TCP_ACK, chunk))  # fmt: skip
    out.append(
        TcpSegment(99, "1.1.1.1", "2.2.2.2", 1, 2, (isn + 1 + len(data)) & 0xFFFFFFFF, 0,
                   TCP_FIN | TCP_ACK, b"")
    )  # fmt: skip
    split = draw(st.integers(0, len(out)))
    return data, split, out


@settings(max_examples=300, deadline=None)
@given(shuffled_stream())
def test_any_order_and_duplication_reassembles(case: tuple[bytes, int, list[TcpSegment]]) -> None:
    data, split, segs = case
    r = TcpReassembler(TcpReassemblyOptions())
    out = r.add(segs[:split]) + r.add(segs[split:])
    assert b"".join(c.data for _, c in out) == data
    assert [c.end for _, c in out].count(True) == 1
    assert out[-1][1].end
    s = r.stats()
    assert (s["gaps"], s["held_bytes"]) == (0, 0)
    # the other direction never spoke: the flow lingers until closed, with nothing left to say
    assert [c.data for _, c in r.close()] == []
