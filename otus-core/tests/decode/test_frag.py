"""IPv4/IPv6 fragment reassembly: random splits and orders, limits, and the overlap policy."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from otus import Interest
from otus._decode.decoder import Decoder
from otus._decode.options import DecoderOptions, IpReassemblyOptions

from .conftest import decode_frames

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
SIP = Interest(transports=frozenset({"udp", "tcp"}), ports=frozenset({5060}), detector="sip")


def frag4(
    l4: bytes, cuts: list[int], ident: int = 7, proto: int = 17, src: str = "10.0.0.1"
) -> list[Packet]:
    """IPv4 fragments of ``l4`` split at the (8-aligned) offsets ``cuts``."""
    bounds = [0, *cuts, len(l4)]
    return [
        IP(
            src=src,
            dst="10.0.0.2",
            id=ident,
            proto=proto,
            frag=a // 8,
            flags="MF" if b < len(l4) else 0,
        )
        / Raw(l4[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def frag6(l4: bytes, cuts: list[int], ident: int = 99, nh: int = 17) -> list[Packet]:
    bounds = [0, *cuts, len(l4)]
    return [
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(nh=nh, offset=a // 8, m=int(b < len(l4)), id=ident)
        / Raw(l4[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def udp_bytes(payload: bytes, v6: bool = False) -> bytes:
    ip = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2")
    return bytes(ip / UDP(sport=5060, dport=5060) / Raw(payload))[40 if v6 else 20 :]


def eth(pkts: list[Packet]) -> list[bytes]:
    return [bytes(Ether(**MAC) / p) for p in pkts]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(16, 4000),
    data=st.data(),
    v6=st.booleans(),
    batches=st.integers(1, 3),
)
def test_random_split_and_order_reassembles_the_datagram(
    size: int, data: st.DataObject, v6: bool, batches: int
) -> None:
    payload = bytes(random.Random(size).randrange(256) for _ in range(size))
    l4 = udp_bytes(payload, v6)
    slots = list(range(8, len(l4), 8))
    cuts = sorted(
        data.draw(st.sets(st.sampled_from(slots), min_size=1, max_size=min(20, len(slots))))
    )
    frames = eth(frag6(l4, cuts) if v6 else frag4(l4, cuts))
    dups = data.draw(st.lists(st.sampled_from(frames), max_size=3))
    frames = data.draw(st.permutations(frames + dups))
    dec = Decoder(DecoderOptions(), [])
    rows = []
    step = -(-len(frames) // batches)
    for i in range(0, len(frames), step):
        _, out = decode_frames(frames[i : i + step], decoder=dec)
        rows += out.rows()
    done = [r for r in rows if r["frag"] == 2]
    # A duplicate arriving after completion starts a new datagram (it may even complete again).
    assert len(done) == 1 if not dups else len(done) >= 1
    for r in done:
        assert (r["status_name"], r["src_port"], r["dst_port"], r["payload"]) == (
            "ok",
            5060,
            5060,
            payload,
        )
        assert r["buf"] == 1
    s = dec.stats()
    assert s["reassembled"] == len(done)
    assert sum(v for k, v in s.items() if k.startswith("frag_evicted.")) == 0
    dec.tick(10**15)
    assert (dec.stats()["frag_active"], dec.stats()["frag_memory"]) == (0, 0)


def test_reassembled_sip_invite_is_classified_and_keeps_l2_context() -> None:
    invite = b"INVITE sip:bob@example.com SIP/2.0\r\n" + b"X-Pad: " + b"a" * 3000 + b"\r\n\r\n"
    frags = frag4(udp_bytes(invite), [1480, 2960])
    frames = [bytes(Ether(**MAC) / Dot1Q(vlan=77) / f) for f in frags]
    _, out = decode_frames(frames, [SIP])
    assert out.count == 4
    assert [out.row(i)["status_name"] for i in range(3)] == ["fragment"] * 3
    dgs = out.datagrams(0)
    assert len(dgs) == 1
    assert bytes(dgs[0].payload) == invite
    assert dgs[0].vlan_id == 77
    assert out.row(3)["pkt"] == 2


def test_fragmented_tunnel_is_decoded_after_reassembly() -> None:
    inner = (
        Ether(**MAC)
        / IP(src="192.168.0.1", dst="192.168.0.2")
        / UDP(sport=5060, dport=5060)
        / Raw(b"SIP/2.0 200 OK\r\n" + b"b" * 2000)
    )
    outer_l4 = bytes(UDP(sport=1234, dport=4789) / VXLAN(vni=5) / inner)
    frames = eth(frag4(outer_l4, [1000]))
    _, out = decode_frames(frames, [SIP])
    r = out.row(2)
    assert (r["frag"], r["tunnel_kind"], r["src"], r["outer_src_text"]) == (
        2,
        "vxlan",
        "192.168.0.1",
        "10.0.0.1",
    )
    assert out.wanted(0) == 1


def test_fragments_inside_a_tunnel_keep_the_outer_addresses() -> None:
    frags = frag6(udp_bytes(b"c" * 1500, v6=True), [800])
    frames = [
        bytes(Ether(**MAC) / IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / f) for f in frags
    ]
    _, out = decode_frames(frames)
    r = out.row(2)
    assert (r["frag"], r["tunnel_kind"], r["outer_src_text"], r["src"]) == (
        2,
        "gre",
        "172.16.0.1",
        "2001:db8::1",
    )
    assert r["payload"] == b"c" * 1500


def test_overlap_drops_the_datagram_and_counts_teardrop() -> None:
    l4 = udp_bytes(b"d" * 100)
    a, b = frag4(l4, [48])
    evil = IP(src="10.0.0.1", dst="10.0.0.2", id=7, proto=17, frag=2, flags="MF") / Raw(b"e" * 16)
    dec, out = decode_frames(eth([a, evil, b]))
    s = dec.stats()
    assert s["reassembled"] == 0
    assert (s["frag_evicted.overlap"], s["frag_attack.teardrop"]) == (1, 1)
    assert all(r["frag"] != 2 for r in out.rows())


def test_conflicting_duplicate_is_an_overlap_exact_duplicate_is_ignored() -> None:
    l4 = udp_bytes(b"d" * 100)
    a, b = frag4(l4, [48])
    a2 = a.copy()
    a2[Raw].load = b"Z" + bytes(a[Raw].load)[1:]
    dec, _ = decode_frames(eth([a, a2, b]))
    assert (dec.stats()["frag_evicted.overlap"], dec.stats()["reassembled"]) == (1, 0)
    dec, _ = decode_frames(eth([a, a, b]))
    assert (dec.stats()["frag_duplicate"], dec.stats()["reassembled"]) == (1, 1)


def test_tiny_fragment_attacks_are_dropped() -> None:
    seg = bytes(TCP(sport=1, dport=2, flags="S") / Raw(b"x" * 40))
    first, rest = frag4(seg, [8], proto=6)  # first fragment: 8 bytes, no room for TCP flags
    dec, _ = decode_frames(eth([first, rest]))
    assert dec.stats()["frag_attack.tiny"] == 2  # the 8-byte head, then a TCP fragment at offset 8
    assert dec.stats()["reassembled"] == 0
    first, rest = frag4(seg, [24], proto=6)
    overwrite = IP(src="10.0.0.1", dst="10.0.0.2", id=7, proto=6, frag=1, flags="MF") / Raw(
        b"\0" * 16
    )
    dec, _ = decode_frames(eth([first, overwrite, rest]))
    assert dec.stats()["frag_attack.tiny"] == 1
    assert dec.stats()["reassembled"] == 0


def _opts(**kw: object) -> DecoderOptions:
    return DecoderOptions(ip_reassembly=IpReassemblyOptions(**kw))  # type: ignore[arg-type]


def test_timeout_evicts_on_tick_and_on_insert() -> None:
    dec = Decoder(_opts(timeout="2s"), [])
    first = eth(frag4(udp_bytes(b"t" * 100), [56]))[0]
    decode_frames([first], decoder=dec)
    assert dec.stats()["frag_active"] == 1
    dec.tick(1_000_000_000 + 1_999_999_999)
    assert dec.stats()["frag_active"] == 1
    dec.tick(1_000_000_000 + 2_000_000_000)
    assert (dec.stats()["frag_active"], dec.stats()["frag_evicted.timeout"]) == (0, 1)


def test_limits_datagrams_fragments_size_memory() -> None:
    heads = [eth(frag4(udp_bytes(b"m" * 200), [64], ident=i))[0] for i in range(5)]
    dec, _ = decode_frames(heads, options=_opts(max_datagrams=3))
    assert (dec.stats()["frag_evicted.max_datagrams"], dec.stats()["frag_active"]) == (2, 3)

    many = eth(frag4(udp_bytes(b"m" * 200), [16, 32, 48, 64]))
    dec, _ = decode_frames(many, options=_opts(max_fragments_per_datagram=3))
    assert dec.stats()["frag_evicted.too_many_fragments"] == 1

    big = eth(frag4(udp_bytes(b"m" * 1000), [512]))
    dec, _ = decode_frames(big, options=_opts(max_datagram_size=576))
    assert dec.stats()["frag_evicted.too_large"] == 1
    assert dec.stats()["reassembled"] == 0

    heads = [eth(frag4(udp_bytes(b"m" * 3000), [1480], ident=i))[0] for i in range(6)]
    dec, _ = decode_frames(heads, options=_opts(max_memory=5000))
    s = dec.stats()
    assert s["frag_evicted.memory"] >= 3
    assert s["frag_memory"] <= 5000


def test_inconsistent_last_fragment() -> None:
    a, b = frag4(udp_bytes(b"i" * 100), [48])
    other_end = IP(src="10.0.0.1", dst="10.0.0.2", id=7, proto=17, frag=10) / Raw(b"q" * 8)
    dec, _ = decode_frames(eth([a, b, other_end]))
    assert dec.stats()["reassembled"] == 1
    dec, _ = decode_frames(eth([a, other_end, b]))
    assert (dec.stats()["frag_evicted.inconsistent"], dec.stats()["reassembled"]) == (1, 0)


def test_reassembly_disabled_leaves_fragments() -> None:
    frames = eth(frag4(udp_bytes(b"o" * 100), [48]))
    dec, out = decode_frames(frames, options=_opts(enabled=False))
    assert out.count == 2
    assert dec.stats()["reassembled"] == 0
    assert dec.stats()["frag_active"] == 0
