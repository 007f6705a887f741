"""The packet builders produce what independent decoders read back (dpkt; tshark checks sums)."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from otus.capture import LINKTYPE_ETHERNET, PACKET_DESC
from otus.testing import (
    DEFAULT_TS_NS,
    ethernet_udp_frame,
    make_record,
    need,
    need_tool,
    raw_batch,
    udp_datagram,
    write_pcap,
)


def _dpkt():  # type: ignore[no-untyped-def]
    need(importlib.util.find_spec("dpkt") is not None, "dpkt (test oracle) is not installed")
    import dpkt

    return dpkt


@pytest.mark.parametrize(
    ("src", "dst", "vlan"),
    [
        ("192.0.2.1", "198.51.100.2", None),
        ("2001:db8::1", "2001:db8::2", None),
        ("10.0.0.1", "10.0.0.2", 42),
    ],
)
def test_frame_decodes_with_dpkt(src: str, dst: str, vlan: int | None) -> None:
    dpkt = _dpkt()
    frame = ethernet_udp_frame(b"hello otus", src=src, dst=dst, sport=5060, dport=5080, vlan=vlan)
    eth = dpkt.ethernet.Ethernet(frame)
    if vlan is not None:
        assert eth.vlan_tags[0].id == vlan
    ip = eth.data
    udp = ip.data
    assert (udp.sport, udp.dport, bytes(udp.data)) == (5060, 5080, b"hello otus")
    assert ip.src == ipaddress.ip_address(src).packed
    assert ip.dst == ipaddress.ip_address(dst).packed
    assert udp.ulen == 8 + len(b"hello otus")


def test_pcap_reads_back_in_tshark(tmp_path: Path) -> None:
    tshark = need_tool("tshark")
    frames = [
        ethernet_udp_frame(b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n", dport=5060),
        ethernet_udp_frame(b"x", src="2001:db8::1", dst="2001:db8::2", vlan=7),
    ]
    pcap = write_pcap(tmp_path / "t.pcap", frames)
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "json", "-o", "udp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    packets = [p["_source"]["layers"] for p in json.loads(out)]
    assert len(packets) == 2
    assert packets[0]["frame"]["frame.time_epoch"].startswith(str(DEFAULT_TS_NS // 10**9))
    assert packets[0]["ip"]["ip.checksum.status"] == "1"  # 1: good
    assert packets[0]["udp"]["udp.checksum.status"] == "1"
    assert packets[1]["vlan"]["vlan.id"] == "7"
    assert packets[1]["ipv6"]["ipv6.src"] == "2001:db8::1"
    assert packets[1]["udp"]["udp.checksum.status"] == "1"


def test_raw_batch_descriptors() -> None:
    frames = [ethernet_udp_frame(b"a" * n) for n in (1, 10, 100)]
    batch = raw_batch(frames, ts_ns=1_000, step_ns=5)
    assert batch.count == 3
    offsets = []
    for i, frame in enumerate(frames):
        ts, off, caplen, wirelen, _, linktype, *_ = PACKET_DESC.unpack_from(batch.descs, i * 32)
        assert (ts, caplen, wirelen, linktype) == (
            1_000 + 5 * i,
            len(frame),
            len(frame),
            LINKTYPE_ETHERNET,
        )
        assert batch.data[off : off + caplen] == frame
        offsets.append(off)
    assert offsets == sorted(offsets)


def test_datagram_and_record_defaults() -> None:
    d = udp_datagram(b"abc", src="2001:db8::1", dst="2001:db8::2", sport=1, dport=2)
    assert (d.src_ip, d.dst_ip, d.src_port, d.dst_port, d.protocol) == (
        "2001:db8::1",
        "2001:db8::2",
        1,
        2,
        17,
    )
    assert bytes(d.payload) == b"abc"
    labels = {"sip.method": "INVITE"}
    r = make_record(labels=labels)
    r.labels["sip.x"] = "y"
    assert labels == {"sip.method": "INVITE"}  # the record owns a copy
    assert r.key == "192.0.2.1:40000-192.0.2.2:5060"


def test_mixed_families_are_refused() -> None:
    with pytest.raises(ValueError, match="address families differ"):
        ethernet_udp_frame(b"", src="192.0.2.1", dst="2001:db8::1")
