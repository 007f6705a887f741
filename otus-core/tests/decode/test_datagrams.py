"""Datagrams and TCP segments built in C (``_native/pyapi/build.c``) against the decoder's
own entries.

``DecodedBatch.row`` reads each entry through the Python struct view (``layout.py``), an
independent path to the same fields; every datagram must carry exactly what its entry says.
"""

from __future__ import annotations

import gc
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from otus import Datagram, Interest
from otus._decode.segments import TcpSegment
from otus._native import builders

from .conftest import decode_frames

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
ANY = Interest(transports=frozenset({"udp", "tcp", "sctp"}))
STREAM = Interest(transports=frozenset({"udp", "tcp"}), tcp_stream=True)


def frames() -> list[bytes]:
    """IPv4 and IPv6, VLAN-tagged, TCP, empty payloads and a fragmented datagram."""
    out = [
        bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5062)
              / Raw(b"INVITE sip:a@b SIP/2.0\r\n\r\n")),
        bytes(Ether(**MAC) / Dot1Q(vlan=301) / IP(src="192.0.2.7", dst="198.51.100.9")
              / UDP(sport=40000, dport=40002) / Raw(b"\x80" * 172)),
        bytes(Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8:ffff::2")
              / UDP(sport=1, dport=65535) / Raw(b"v6")),
        bytes(Ether(**MAC) / IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=9, dport=9)),
        bytes(Ether(**MAC) / IPv6(src="::1", dst="fe80::1")
              / TCP(sport=5060, dport=50000, seq=7, flags="PA") / Raw(b"SIP/2.0 200 OK\r\n")),
    ]  # fmt: skip
    big = IP(src="10.9.9.9", dst="10.0.0.2", id=77) / UDP(sport=5060, dport=5060) / Raw(b"x" * 3000)
    out += [bytes(Ether(**MAC) / f) for f in fragment(big, fragsize=1200)]
    return out


def expected(out: object, index: int, skip_tcp: bool) -> list[tuple[object, ...]]:
    rows = [out.row(i) for i in out.indices(index)]  # type: ignore[attr-defined]
    return [
        (r["ts_ns"], r["src"], r["dst"], r["src_port"], r["dst_port"], r["ip_proto"],
         r["payload"], r["vlan_outer"], r["ifindex"])
        for r in rows
        if not (skip_tcp and r["ip_proto"] == 6)
    ]  # fmt: skip


def actual(datagrams: list[Datagram]) -> list[tuple[object, ...]]:
    return [
        (d.ts_ns, d.src_ip, d.dst_ip, d.src_port, d.dst_port, d.protocol, bytes(d.payload),
         d.vlan_id, d.ifindex)
        for d in datagrams
    ]  # fmt: skip


def test_every_field_as_the_entry_says() -> None:
    _, out = decode_frames(frames(), [ANY, STREAM], ifindex=7)
    got = out.datagrams(0)
    assert all(type(d) is Datagram for d in got)
    assert all(isinstance(d.payload, memoryview) for d in got)
    assert actual(got) == expected(out, 0, skip_tcp=False)
    # the stream interest gets the UDP ones only (its TCP goes to tcp_segments)
    assert actual(out.datagrams(1)) == expected(out, 1, skip_tcp=True)
    assert len(got) == 6  # 4 UDP + TCP + the reassembled datagram (from the arena)
    reassembled = [d for d in got if d.src_ip == "10.9.9.9"]
    assert [len(d.payload) for d in reassembled] == [3000]
    assert {d.vlan_id for d in got} == {0, 301}
    assert {d.ifindex for d in got} == {7}


def test_tcp_segments_as_the_entries_say() -> None:
    fs = frames()
    fs.append(
        bytes(Ether(**MAC) / Dot1Q(vlan=9) / IP(src="10.0.0.8", dst="10.0.0.9")
              / TCP(sport=5061, dport=40000, seq=2**32 - 3, ack=99, flags="FA"))
    )  # fmt: skip
    _, out = decode_frames(fs, [ANY, STREAM])
    assert out.tcp_segments(0) == []  # not a stream parser
    got = out.tcp_segments(1)
    assert all(type(s) is TcpSegment for s in got)
    rows = [out.row(i) for i in out.indices(1) if out.row(i)["ip_proto"] == 6]
    assert [
        (s.ts_ns, s.src_ip, s.dst_ip, s.src_port, s.dst_port, s.seq, s.ack, s.flags, s.payload,
         s.parser)
        for s in got
    ] == [
        (r["ts_ns"], r["src"], r["dst"], r["src_port"], r["dst_port"], r["tcp_seq"],
         r["tcp_ack"], r["tcp_flags"], r["payload"], 1)
        for r in rows
    ]  # fmt: skip
    assert len(got) == 2
    assert all(type(s.payload) is bytes for s in got)  # owned copies
    assert got[1].seq == 2**32 - 3
    assert got[1].payload == b""


def test_payload_views_stay_valid_while_the_batch_is_held() -> None:
    _, out = decode_frames(frames(), [ANY])
    first = out.datagrams(0)
    again = out.datagrams(0)  # built anew each call, equal values
    assert actual(first) == actual(again)
    del out
    gc.collect()
    # the views keep their buffers (batch memory and arena) alive
    assert bytes(first[0].payload).startswith(b"INVITE")


def test_no_reference_leaks() -> None:
    fs = frames()
    _, out = decode_frames(fs, [STREAM])
    out.datagrams(0)
    out.tcp_segments(0)
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    blocks = sys.getallocatedblocks()
    for _ in range(300):
        out.datagrams(0)
        out.tcp_segments(0)
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 50
    if before is not None:  # debug builds only
        assert sys.gettotalrefcount() - before < 50


def test_bad_arguments_are_refused() -> None:
    build = builders().datagrams
    with pytest.raises(TypeError):
        build(0, 0, 0, -1, b"not a view", None)
    with pytest.raises(ValueError, match="bad entry array"):
        build(0, 0, 3, -1, memoryview(b""), None)
    with pytest.raises(TypeError):
        build(0, 0)
    with pytest.raises(TypeError, match="int parser index"):
        builders().segments(0, 0, 0, memoryview(b""), None, "1")
    assert build(0, 0, 0, -1, memoryview(b""), None) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["v4", "v6"]),
            st.integers(0, 255),
            st.integers(1, 65535),
            st.binary(max_size=300),
            st.one_of(st.none(), st.integers(1, 4094)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_random_udp_batches(spec: list[tuple[str, int, int, bytes, int | None]]) -> None:
    fs = []
    for ver, host, port, payload, vlan in spec:
        l3 = (
            IP(src=f"10.1.2.{host}", dst="10.0.0.1")
            if ver == "v4"
            else IPv6(src=f"2001:db8::{host:x}", dst="2001:db8::1")
        )
        l2 = Ether(**MAC) / Dot1Q(vlan=vlan) if vlan is not None else Ether(**MAC)
        fs.append(bytes(l2 / l3 / UDP(sport=port, dport=5060) / Raw(payload)))
    _, out = decode_frames(fs, [ANY])
    assert actual(out.datagrams(0)) == expected(out, 0, skip_tcp=False)
    assert len(out.datagrams(0)) == len(spec)
