"""TCP stream reassembly rate (segments/s): in order, and with reordering and retransmissions.

Builds SIP-over-TCP-like flows (several hundred concurrent connections, 300-1300-byte
segments), feeds them in batches of 1024 segments, median of several runs. No peer: dpkt and
scapy have no TCP reassembler. ``python bench/bench_tcp.py [--quick]`` prints the rows.
"""

from __future__ import annotations

import random
import statistics
import sys
import time


def _segments(flows: int, per_flow: int, *, shuffle: float, dup: float) -> list[object]:
    from otus._decode.segments import TCP_ACK, TCP_FIN, TCP_SYN, TcpSegment

    rnd = random.Random(7)
    streams = []
    for f in range(flows):
        src = f"10.{f >> 16 & 255}.{f >> 8 & 255}.{f & 255}"
        isn = rnd.getrandbits(32)
        segs = [TcpSegment(0, src, "10.255.0.1", 1024 + f % 60000, 5060, isn, 0, TCP_SYN, b"")]
        seq = isn + 1
        for i in range(per_flow):
            data = b"x" * (300 + (i * 37 + f) % 1000)
            segs.append(
                TcpSegment(
                    i, src, "10.255.0.1", 1024 + f % 60000, 5060, seq & 0xFFFFFFFF, 0, TCP_ACK, data
                )
            )
            seq += len(data)
        segs.append(
            TcpSegment(
                per_flow,
                src,
                "10.255.0.1",
                1024 + f % 60000,
                5060,
                seq & 0xFFFFFFFF,
                0,
                TCP_FIN | TCP_ACK,
                b"",
            )
        )
        body = segs[1:-1]
        for i in range(len(body) - 1):
            if rnd.random() < shuffle:
                body[i], body[i + 1] = body[i + 1], body[i]
        body += [s for s in body if rnd.random() < dup]
        streams.append([segs[0], *body, segs[-1]])
    # interleave the flows the way a capture does
    out: list[object] = []
    cursors = [0] * flows
    live = list(range(flows))
    while live:
        f = rnd.choice(live)
        out.append(streams[f][cursors[f]])
        cursors[f] += 1
        if cursors[f] == len(streams[f]):
            live.remove(f)
    return out


def _rate(segments: list[object], runs: int) -> float:
    from otus._decode.options import TcpReassemblyOptions
    from otus._reassembly.tcp import TcpReassembler

    batches = [segments[i : i + 1024] for i in range(0, len(segments), 1024)]
    rates = []
    for _ in range(runs):
        r = TcpReassembler(TcpReassemblyOptions())
        t = time.perf_counter()
        for b in batches:
            r.add(b)  # type: ignore[arg-type]
        r.close()
        rates.append(len(segments) / (time.perf_counter() - t))
        assert r.stats()["gaps"] == 0
    return statistics.median(rates)


def run(quick: bool) -> list[dict[str, object]]:
    flows, per_flow = (200, 200) if quick else (500, 400)
    runs = 3 if quick else 5
    rows = []
    for name, shuffle, dup in [("in order", 0.0, 0.0), ("10% reordered, 2% dup", 0.1, 0.02)]:
        segs = _segments(flows, per_flow, shuffle=shuffle, dup=dup)
        rows.append(
            {
                "stage": f"tcp reassembly ({name})",
                "otus_rate": _rate(segs, runs),
                "unit": "seg/s",
                "peer": None,
                "peer_rate": None,
                "note": f"{len(segs):,} segments, {flows} flows, batches of 1024",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(f"{row['stage']:<40} {row['otus_rate']:>12,.0f} {row['unit']}  ({row['note']})")
