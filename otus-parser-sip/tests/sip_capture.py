"""Real SIP calls for the end-to-end tests: sipp on loopback, recorded by tcpdump, read by tshark.

Also a small pcap reader (dpkt) that hands UDP payloads and in-order TCP stream chunks straight to
a parser, so the parser can be checked against tshark without the rest of the pipeline.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dpkt

from otus import Datagram, StreamChunk

SCENARIOS = Path(__file__).parent / "data" / "sipp"
CUSTOM = ("register", "cancel", "busy", "reinvite", "auth")

#: What the oracle and Otus are compared on, per SIP message.
Row = tuple[str, str, str, str, str, str, str, str]


def free_port_pair() -> tuple[int, int]:
    """Two consecutive-ish ports free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        base = random.randint(20000, 40000)
        ok = True
        for port in (base, base + 1):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        ok = False
        if ok:
            return base, base + 1
    raise RuntimeError("no free port pair")


@contextmanager
def tcpdump(pcap: Path, port: int) -> Iterator[None]:
    """Record loopback traffic on ``port``; started and ready before the block, flushed after."""
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-w", str(pcap), f"port {port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()  # "listening on lo, ..." once the socket is open
        assert "listening" in line, line
        yield
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sipp_call(uas: list[str], uac: list[str], uas_port: int, uac_port: int, transport: str) -> None:
    """One call: a UAS in the background, a UAC placing it; the UAC must succeed."""
    common = ["-i", "127.0.0.1", "-m", "1", "-nostdin", "-t", transport, "-timeout", "10s"]
    server = subprocess.Popen(
        ["sipp", *uas, "-p", str(uas_port), *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)  # the UAS binds its socket
        client = subprocess.run(
            ["sipp", *uac, f"127.0.0.1:{uas_port}", "-p", str(uac_port), "-d", "50", *common,
             "-au", "alice", "-ap", "secret"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20, check=False,
        )  # fmt: skip
        # The UAC succeeding means every message of the call went over the wire. The UAS may
        # still sit in its closing pause (or see the TCP connection closed): it is not waited for.
        assert client.returncode == 0, f"sipp UAC {uac} failed ({client.returncode})"
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def record_calls(pcap: Path, transport: str) -> int:
    """All scenarios (built-in uac/uas and the custom XML pairs) into one pcap; the UAS port."""
    uas_port, uac_port = free_port_pair()
    with tcpdump(pcap, uas_port):
        sipp_call(["-sn", "uas"], ["-sn", "uac"], uas_port, uac_port, transport)
        for name in CUSTOM:
            sipp_call(
                ["-sf", str(SCENARIOS / f"{name}_uas.xml")],
                ["-sf", str(SCENARIOS / f"{name}_uac.xml")],
                uas_port,
                uac_port,
                transport,
            )
    return uas_port


TSHARK_FIELDS = (
    "sip.Method",
    "sip.Status-Code",
    "sip.Call-ID",
    "sip.CSeq",
    "sip.from.addr",
    "sip.to.addr",
    "sip.from.tag",
    "sip.to.tag",
    "sip.Via.branch",
)


def tshark_rows(pcap: Path, port: int) -> tuple[list[Row], list[str]]:
    """Every SIP message tshark decodes, in capture order (one row per message).

    When one TCP segment holds several messages tshark lists methods and status codes apart,
    so their order among each other is unknown: the kind is then ``?`` in the row, and the
    second list (every method and status code seen) lets the caller compare kinds as a multiset.
    """
    cmd = ["tshark", "-r", str(pcap), "-d", f"udp.port=={port},sip", "-d", f"tcp.port=={port},sip",
           "-Y", "sip", "-T", "json"]  # fmt: skip
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    rows: list[Row] = []
    all_kinds: list[str] = []
    for pkt in json.loads(out or b"[]"):
        layers: dict[str, list[str]] = pkt["_source"]["layers"]
        n = len(layers["sip.Call-ID"])
        kinds_ = layers.get("sip.Method", []) + layers.get("sip.Status-Code", [])
        assert len(kinds_) == n
        all_kinds += kinds_
        for i in range(n):
            rows.append(
                (
                    kinds_[0] if n == 1 else "?",
                    layers["sip.Call-ID"][i],
                    layers["sip.CSeq"][i],
                    layers["sip.from.addr"][i],
                    layers["sip.to.addr"][i],
                    _get(layers, "sip.from.tag", i, n),
                    _get(layers, "sip.to.tag", i, n),
                    _get(layers, "sip.Via.branch", i, n),
                )
            )
    return rows, all_kinds


def _get(layers: dict[str, list[str]], key: str, i: int, n: int) -> str:
    vals = layers.get(key, [])
    if len(vals) == n:
        return vals[i]
    assert not vals or n == 1, f"{key}: cannot pair {vals} with {n} messages"
    return vals[0] if vals else ""


def otus_row(labels: dict[str, str]) -> Row:
    """The same fields from an Otus record's labels."""
    return (
        labels.get("sip.status_code") or labels["sip.method"],
        labels["sip.call_id"],
        labels["sip.cseq"],
        labels["sip.from_uri"],
        labels["sip.to_uri"],
        labels.get("sip.from_tag", ""),
        labels.get("sip.to_tag", ""),
        labels.get("sip.via_branch", ""),
    )


def pcap_inputs(pcap: Path) -> Iterator[Datagram | StreamChunk]:
    """UDP payloads as datagrams and TCP payloads as in-order stream chunks (loopback: no loss)."""
    next_seq: dict[tuple[str, int, str, int], int] = {}
    with pcap.open("rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            src, dst = socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst)
            l4 = ip.data
            ts_ns = int(ts * 1e9)
            if isinstance(l4, dpkt.udp.UDP):
                yield Datagram(ts_ns, src, dst, l4.sport, l4.dport, 17, bytes(l4.data))
            elif isinstance(l4, dpkt.tcp.TCP):
                key = (src, l4.sport, dst, l4.dport)
                syn = l4.flags & dpkt.tcp.TH_SYN
                if syn:
                    next_seq[key] = (l4.seq + 1) & 0xFFFFFFFF
                    continue
                data = bytes(l4.data)
                expect = next_seq.get(key, l4.seq)
                if data and l4.seq == expect:
                    next_seq[key] = (l4.seq + len(data)) & 0xFFFFFFFF
                    yield StreamChunk(ts_ns, src, dst, l4.sport, l4.dport, data)
                if l4.flags & (dpkt.tcp.TH_FIN | dpkt.tcp.TH_RST):
                    yield StreamChunk(ts_ns, src, dst, l4.sport, l4.dport, b"", end=True)


def parse_pcap_directly(parser: Any, pcap: Path) -> list[Any]:
    """Drive a parser with the pcap's packets (no pipeline)."""
    records: list[Any] = []
    for item in pcap_inputs(pcap):
        if isinstance(item, Datagram):
            records += parser.parse([item])
        else:
            records += parser.parse_stream([item])
    return records
