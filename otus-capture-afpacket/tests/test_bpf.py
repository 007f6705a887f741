"""BPF compilation through libpcap, checked against tcpdump's own compiler output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dpkt
import pytest

from otus.testing import need_tool
from otus_capture_afpacket._bpf import FRAGMENTS, compile_filter, expression


def tcpdump_dd(expr: str, tmp_path: Path, snaplen: int = 65535) -> list[tuple[int, int, int, int]]:
    """``tcpdump -dd`` for an Ethernet capture file: libpcap's reference compilation."""
    tcpdump = need_tool("tcpdump")
    pcap = tmp_path / "empty.pcap"
    with pcap.open("wb") as f:
        dpkt.pcap.Writer(f, snaplen=snaplen, linktype=dpkt.pcap.DLT_EN10MB)
    out = subprocess.run(
        [tcpdump, "-r", str(pcap), "-dd", expr], check=True, capture_output=True, text=True
    ).stdout
    rows = [line.strip(" {},") for line in out.splitlines() if line.strip()]
    return [tuple(int(x, 0) for x in row.split(",")) for row in rows]  # type: ignore[misc]


@pytest.mark.parametrize(
    "expr", ["udp port 5060", "host 10.0.0.1 and (tcp or udp)", "vlan and udp", ""]
)
def test_program_matches_tcpdump(expr: str, tmp_path: Path) -> None:
    assert compile_filter(expr).instructions() == tcpdump_dd(expr, tmp_path)


def test_empty_filter_accepts_up_to_snaplen() -> None:
    assert compile_filter("", snaplen=1500).instructions() == [(0x06, 0, 0, 1500)]


@pytest.mark.parametrize(
    ("expr", "message"), [("port five", "unknown port 'five'"), ("(udp", "syntax error")]
)
def test_bad_expression_carries_libpcap_message(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_filter(expr)


def test_keep_fragments_widens_the_filter() -> None:
    assert expression(" port 5060 ", keep_fragments=False) == "port 5060"
    assert expression("port 5060", keep_fragments=True) == f"(port 5060) or {FRAGMENTS}"
    assert expression("", keep_fragments=True) == ""  # no filter already keeps everything
    assert len(compile_filter(expression("port 5060", keep_fragments=True))) > len(
        compile_filter("port 5060")
    )
