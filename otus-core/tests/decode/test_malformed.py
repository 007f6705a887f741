"""Malformed packets: each is classified with a specific reason, counted, and never crashes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.sctp import SCTP, SCTPChunkData
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from otus import RawBatch
from otus._decode.decoder import Decoder
from otus._decode.options import DecoderOptions
from otus.capture import PACKET_DESC

from .conftest import decode_frames

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
UDP4 = bytes(
    Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"p" * 10)
)


def _status(frame: bytes, linktype: int = 1) -> str:
    dec, out = decode_frames([(frame, linktype)])
    name = str(out.row(0)["status_name"])
    if name not in ("ok", "fragment", "not_ip"):
        assert dec.stats()[f"error.{name}"] == 1
    return name


def _ip4(**kw: object) -> bytes:
    return bytes(IP(src="10.0.0.1", dst="10.0.0.2", **kw) / UDP(sport=1, dport=2) / Raw(b"p" * 10))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "linktype", "reason"),
    [
        (UDP4[:13], 1, "truncated_l2"),
        (bytes(Ether(**MAC) / Dot1Q(vlan=1))[:16], 1, "truncated_l2"),
        (
            bytes(Ether(**MAC, type=0x8100)) + b"\x00\x01\x81\x00" * 9 + b"\x08\x00",
            1,
            "too_many_vlans",
        ),
        (UDP4[:30], 1, "truncated_ip"),
        (b"\x50" + _ip4()[1:], 101, "bad_ip_version"),
        (b"\x45" + _ip4()[1:], 229, "bad_ip_version"),
        (b"\x44" + _ip4()[1:], 228, "bad_ip_header_len"),
        (b"\x4f" + _ip4()[1:], 228, "truncated_ip"),
        (_ip4()[:2] + struct.pack(">H", 10) + _ip4()[4:], 228, "bad_ip_total_len"),
        (_ip4()[:2] + struct.pack(">H", 200) + _ip4()[4:], 228, "truncated_ip"),
        (bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=17) / Raw(b"abc")), 228, "truncated_l4"),
        (
            bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2, len=4) / Raw(b"p")),
            228,
            "bad_udp_len",
        ),
        (
            bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2, len=99) / Raw(b"p")),
            228,
            "bad_udp_len",
        ),
        (bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dataofs=3)), 228, "bad_tcp_offset"),
        (bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dataofs=15)), 228, "bad_tcp_offset"),
        (
            bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SCTP() / Raw(b"\x00\x00\x00\x02")),
            228,
            "bad_sctp_chunk",
        ),
        (
            bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SCTP() / SCTPChunkData(data=b"x", len=40)),
            228,
            "truncated_l4",
        ),
        (bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop(len=20) / UDP()), 229, "bad_ip_ext"),
        (
            bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=4789) / Raw(b"\x08\0")),
            228,
            "truncated_tunnel",
        ),
        (
            bytes(
                IP(src="10.0.0.1", dst="10.0.0.2")
                / UDP(sport=1, dport=4789)
                / VXLAN()
                / Raw(b"\0" * 6)
            ),
            228,
            "truncated_l2",
        ),
        (
            bytes(IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=0) / UDP() / Raw(b"abc")),
            228,
            "bad_fragment",
        ),
        (UDP4, 147, "unsupported_linktype"),
        (b"\x00\x00\x00\x63" + _ip4(), 0, "not_ip"),
    ],
)
def test_malformed_reason(frame: bytes, linktype: int, reason: str) -> None:
    assert _status(frame, linktype) == reason


def test_bad_descriptor_outside_buffer() -> None:
    descs = PACKET_DESC.pack(1, 10, 100, 100, 0, 1, 0, 0, 0) + PACKET_DESC.pack(
        1, 2**32 - 1, 5, 5, 0, 1, 0, 0, 0
    )
    dec = Decoder(DecoderOptions(), [])
    out = dec.decode(RawBatch(UDP4, descs, 2))
    assert [out.row(i)["status_name"] for i in range(2)] == ["bad_descriptor"] * 2
    assert dec.stats()["error.bad_descriptor"] == 2


SHAPES_FOR_TRUNCATION = [
    (UDP4, 1),
    (
        bytes(
            Ether(**MAC)
            / Dot1Q(vlan=3)
            / IPv6(src="::1", dst="::2")
            / IPv6ExtHdrHopByHop()
            / TCP()
            / Raw(b"x" * 5)
        ),
        1,
    ),
    (
        bytes(
            Ether(**MAC)
            / IP(src="1.1.1.1", dst="2.2.2.2")
            / UDP(sport=3, dport=4789)
            / VXLAN()
            / Ether(**MAC)
            / IP(src="10.0.0.1", dst="10.0.0.2")
            / UDP(sport=1, dport=2)
            / Raw(b"z" * 3)
        ),
        1,
    ),
    (bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SCTP() / SCTPChunkData(data=b"abcd")), 228),
]


@pytest.mark.parametrize(("frame", "linktype"), SHAPES_FOR_TRUNCATION)
def test_truncation_at_every_length_is_an_error(frame: bytes, linktype: int) -> None:
    frames = [(frame[:n], linktype) for n in range(len(frame))]
    dec, out = decode_frames(frames)
    for n in range(len(frame)):
        r = out.row(n)
        assert r["status"] >= 3, (n, r["status_name"])  # an error reason, never "ok"
    errors = sum(v for k, v in dec.stats().items() if k.startswith("error."))
    assert errors == len(frame)


LINKTYPES = [0, 1, 101, 108, 113, 228, 229, 276, 9999]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(
        st.tuples(st.binary(min_size=0, max_size=200), st.sampled_from(LINKTYPES)),
        min_size=1,
        max_size=20,
    )
)
def test_random_bytes_never_crash_and_stay_in_bounds(frames: list[tuple[bytes, int]]) -> None:
    dec, out = decode_frames(frames)
    assert out.count == len(frames)
    offset = 0
    for i, (frame, _) in enumerate(frames):
        r = out.row(i)
        assert r["status_name"] != "unknown"
        if r["status"] == 0:
            assert offset <= r["payload_offset"]
            assert r["payload_offset"] + r["payload_len"] <= offset + len(frame)
        offset += len(frame)
    s = dec.stats()
    accounted = (
        s["decoded"] + s["ignored.not_ip"] + sum(v for k, v in s.items() if k.startswith("error."))
    )
    assert accounted + sum(out.row(i)["status"] == 1 for i in range(out.count)) == len(frames)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_valid_frames_never_crash(data: st.DataObject) -> None:
    frame = bytearray(data.draw(st.sampled_from([f for f, _ in SHAPES_FOR_TRUNCATION])))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(frame) - 1))
        frame[pos] = data.draw(st.integers(0, 255))
    _, out = decode_frames([bytes(frame)])
    r = out.row(0)
    if r["status"] == 0:
        assert r["payload_offset"] + r["payload_len"] <= len(frame)
