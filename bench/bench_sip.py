"""Benchmark of the SIP parser: full parse (all headers, SDP, dialogs, record) on a call mix.

The mix is what a SIP edge sees: INVITE with SDP, 100/180/200 with SDP, ACK, BYE/200, REGISTER
with a 401 challenge and 200, OPTIONS/200, the messages of 100 calls at a time interleaved. The
same messages are written to a pcap and tshark extracts the same fields from it in the same run,
for the ratio. ``run(quick)`` returns rows for ``nox -s bench``; ``python bench/bench_sip.py``
prints them.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from otus import Datagram
from otus._pipeline.runner import tuned_gc
from otus_parser_sip import SipOptions, _scan
from otus_parser_sip.parser import SipParser

SDP = (
    "v=0\r\no=- 20518 0 IN IP4 10.0.{c}.1\r\ns=call\r\nc=IN IP4 10.0.{c}.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)


def _msg(start: str, i: int, cseq: str, *, to_tag: bool, body: str = "", extra: str = "") -> bytes:
    """One message of dialog (or registration, ping) ``i``; its Via branch is its
    transaction's, as a UA makes them: a request and its responses share one, every new
    request (the ACK of a 2xx, a BYE, a second REGISTER) has its own."""
    tt = f";tag=b{i:x}" if to_tag else ""
    number, method = cseq.split()
    head = (
        f"{start}\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{i:08x}.{number}{method.lower()};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f'From: "Caller {i}" <sip:+4930{i:07d}@example.com>;tag=a{i:x}\r\n'
        f"To: <sip:+4940{i:07d}@example.com>{tt}\r\n"
        f"Call-ID: {i:x}-4711@10.0.0.1\r\n"
        f"CSeq: {cseq}\r\n"
        f"Contact: <sip:+4930{i:07d}@10.0.0.1:5060;transport=udp>\r\n"
        f"User-Agent: Otus-bench/1.0\r\n"
        f"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REFER\r\n"
        f"{extra}"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


#: Calls, registrations and pings in progress at once: their messages interleave as on a link
#: that carries many dialogs, so caches of recent values and the dialog table see the reuse
#: real traffic gives them, not one dialog's messages back to back.
CONCURRENT = 100


def _dialogs(i: int) -> list[list[bytes]]:
    """The messages of answered call ``i``, of a registration with a challenge and of an
    OPTIONS ping, each in its own order."""
    sdp_a = SDP.format(c=i % 250, port=10000 + 2 * (i % 20000))
    sdp_b = SDP.format(c=(i + 1) % 250, port=30000 + 2 * (i % 10000))
    ruri = f"sip:+4940{i:07d}@example.com"
    call = [
        _msg(f"INVITE {ruri} SIP/2.0", i, "1 INVITE", to_tag=False, body=sdp_a),
        _msg("SIP/2.0 100 Trying", i, "1 INVITE", to_tag=False),
        _msg("SIP/2.0 180 Ringing", i, "1 INVITE", to_tag=True),
        _msg("SIP/2.0 200 OK", i, "1 INVITE", to_tag=True, body=sdp_b),
        _msg(f"ACK {ruri} SIP/2.0", i, "1 ACK", to_tag=True),
        _msg(f"BYE {ruri} SIP/2.0", i, "2 BYE", to_tag=True),
        _msg("SIP/2.0 200 OK", i, "2 BYE", to_tag=True),
    ]
    r = i + 1_000_000
    auth = 'WWW-Authenticate: Digest realm="example.com", nonce="abc{r}", qop="auth"\r\n'
    cred = 'Authorization: Digest username="u", realm="example.com", response="0f"\r\n'
    reg = "REGISTER sip:example.com SIP/2.0"
    registration = [
        _msg(reg, r, "1 REGISTER", to_tag=False, extra="Expires: 3600\r\n"),
        _msg("SIP/2.0 401 Unauthorized", r, "1 REGISTER", to_tag=True, extra=auth),
        _msg(reg, r, "2 REGISTER", to_tag=False, extra=cred),
        _msg("SIP/2.0 200 OK", r, "2 REGISTER", to_tag=True),
    ]
    ping = [
        _msg("OPTIONS sip:example.com SIP/2.0", r + 1_000_000, "1 OPTIONS", to_tag=False),
        _msg("SIP/2.0 200 OK", r + 1_000_000, "1 OPTIONS", to_tag=True),
    ]
    return [call, registration, ping]


def call_mix(calls: int) -> list[bytes]:
    """One answered call, one registration with challenge and one OPTIONS ping per ``calls``
    (13 messages each); the dialogs of ``CONCURRENT`` of them at a time interleave, each in
    its own order."""
    out: list[bytes] = []
    for start in range(0, calls, CONCURRENT):
        dialogs = [d for i in range(start, min(calls, start + CONCURRENT)) for d in _dialogs(i)]
        for k in range(max(len(d) for d in dialogs)):
            out += [d[k] for d in dialogs if k < len(d)]
    return out


def write_pcap(path: Path, payloads: list[bytes]) -> None:
    """A classic pcap of Ethernet/IPv4/UDP packets carrying ``payloads`` (port 5060)."""
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n, p in enumerate(payloads):
            udp = struct.pack("!HHHH", 5060, 5060, 8 + len(p), 0) + p
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                             bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))  # fmt: skip
            frame = b"\x00\x01\x02\x03\x04\x05\x00\x01\x02\x03\x04\x06\x08\x00" + ip + udp
            fh.write(struct.pack("<IIII", n // 1000, (n % 1000) * 1000, len(frame), len(frame)))
            fh.write(frame)


def otus_rate(payloads: list[bytes], repeat: int, gc_tuned: bool = True) -> float:
    """Messages per second through ``SipParser.parse`` in batches of 1024 (median of runs).

    ``gc_tuned``: with the garbage collector settings of the run loop (``otus run`` and the
    workers, ``otus._pipeline.runner.tuned_gc``), else with CPython's defaults.
    """
    batches = []
    for s in range(0, len(payloads), 1024):
        batches.append([
            Datagram(s + k, "10.0.0.1", "10.0.0.2", 5060, 5060, 17, memoryview(p))
            for k, p in enumerate(payloads[s : s + 1024])
        ])  # fmt: skip
    rates = []
    for _ in range(repeat):
        parser = SipParser(SipOptions())
        with tuned_gc() if gc_tuned else contextlib.nullcontext():
            t0 = time.perf_counter()
            n = 0
            for b in batches:
                n += len(parser.parse(b))
            dt = time.perf_counter() - t0
        assert n == len(payloads), (n, parser.stats())
        rates.append(n / dt)
    return statistics.median(rates)


def tshark_rate(pcap: Path, count: int, repeat: int) -> float | None:
    """Messages per second of tshark extracting the same fields (process start included)."""
    if shutil.which("tshark") is None:
        return None
    # -n: no name resolution, as for any field extraction (and as bench_end_to_end runs it)
    cmd = ["tshark", "-n", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-E", "separator=|"]
    for f in (
        "sip.Method",
        "sip.Status-Code",
        "sip.Call-ID",
        "sip.CSeq",
        "sip.from.addr",
        "sip.to.addr",
        "sip.from.tag",
        "sip.to.tag",
        "sip.Via.branch",
        "sdp.media.port",
    ):
        cmd += ["-e", f]  # fmt: skip
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
        dt = time.perf_counter() - t0
        lines = out.count(b"\n")
        assert lines == count, (lines, count)
        rates.append(count / dt)
    return statistics.median(rates)


def run(quick: bool) -> list[dict[str, Any]]:
    calls = 500 if quick else 4000
    repeat = 3 if quick else 5
    payloads = call_mix(calls)
    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "sip-mix.pcap"
        write_pcap(pcap, payloads)
        ours = otus_rate(payloads, repeat)
        peer = tshark_rate(pcap, len(payloads), repeat)
        default_gc = otus_rate(payloads, repeat, gc_tuned=False)
    ratio = f", ratio {ours / peer:.1f}x" if peer else ""
    if _scan.fast_available():
        path = "C batch path and payload/body JSON writers (sip_batch.c, sip_json.c, sip_sdp.c)"
    else:
        path = "C header indexer" if _scan.available() else "pure Python"
    return [
        {
            "stage": "sip parse (full: headers, SDP, dialogs, record)",
            "otus_rate": ours,
            "unit": "msg/s",
            "peer": "tshark" if peer else None,
            "peer_rate": peer,
            "note": f"{len(payloads)} msgs, 13-message mix per call/registration/ping{ratio}; "
            f"{path}; GC as in otus run",
        },
        {
            "stage": "sip parse, CPython default GC settings",
            "otus_rate": default_gc,
            "unit": "msg/s",
            "peer": None,
            "peer_rate": None,
            "note": "same mix and parser, gc thresholds left at (700, 10, 10), nothing frozen",
        },
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
