"""A deterministic VoIP traffic mix for benchmarks (and anyone who wants realistic frames).

Per 1000 packets, roughly: 840 RTP over UDP (G.711, 20 ms; 20 % VLAN-tagged, 10 % IPv6),
40 RTCP/DNS, 50 SIP over UDP (INVITE, 100, 180, 200, ACK, BYE; SDP offer in the INVITE and
answer in the 200, announcing the endpoints of the call's RTP), 40 TCP segments (SIP over TCP
and acks of other flows), and large SIP INVITEs sent as IPv4 fragments (about 30 fragments).
Frames are built with ``struct`` (no scapy), so a million frames take seconds.

``frames(n)`` returns ``[(ts_ns, linktype, frame)]``; ``write_pcap(path, n)`` writes a classic
nanosecond pcap and returns the path.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

LINKTYPE_ETHERNET = 1
_MAC = bytes.fromhex("020000000001020000000002")


def _csum(header: bytes) -> int:
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ipv4(
    src: bytes, dst: bytes, proto: int, payload: bytes, ident: int = 0, frag: int = 0
) -> bytes:
    h = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(payload), ident & 0xFFFF, frag, 64, proto, 0, src, dst
    )
    return h[:10] + struct.pack("!H", _csum(h)) + h[12:] + payload


def _ipv6(src: bytes, dst: bytes, nh: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x6B800000, len(payload), nh, 64, src, dst) + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload


def _eth(l3: bytes, v6: bool = False, vlan: int | None = None) -> bytes:
    etype = 0x86DD if v6 else 0x0800
    if vlan is not None:
        return _MAC + struct.pack("!HHH", 0x8100, vlan, etype) + l3
    return _MAC + struct.pack("!H", etype) + l3


def _v4(k: int) -> bytes:
    """Address ``k`` (0 to 398) of the mix's IPv4 hosts, 10.10.x.y."""
    return bytes([10, 10, (k + 1) >> 8, (k + 1) & 255])


def _rtp_ends(call: int) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
    """Where call ``call``'s RTP goes: (caller address, port) and (callee address, port), the
    RTP frames of the mix run from the first to the second."""
    return (_v4(call % 399), 16384 + 2 * (call % 8000)), (
        _v4((call + 11) % 399),
        40000 + 2 * (call % 8000),
    )


def _sip(kind: str, call: int, pad: int = 0) -> bytes:
    first = {
        "INVITE": f"INVITE sip:+4930{call:06d}@voip.example.net SIP/2.0",
        "ACK": f"ACK sip:+4930{call:06d}@10.20.0.5:5060 SIP/2.0",
        "BYE": f"BYE sip:+4930{call:06d}@10.20.0.5:5060 SIP/2.0",
        "100": "SIP/2.0 100 Trying",
        "180": "SIP/2.0 180 Ringing",
        "200": "SIP/2.0 200 OK",
    }[kind]
    headers = (
        f"{first}\r\nVia: SIP/2.0/UDP 10.10.0.2:5060;branch=z9hG4bK{call:08x}\r\n"
        f"From: <sip:alice@voip.example.net>;tag={call:x}a\r\n"
        f"To: <sip:+4930{call:06d}@voip.example.net>\r\n"
        f"Call-ID: {call:012x}@10.10.0.2\r\nCSeq: 1 {kind if kind.isalpha() else 'INVITE'}\r\n"
        f"Contact: <sip:alice@10.10.0.2:5060>\r\nMax-Forwards: 70\r\nUser-Agent: bench\r\n"
    )
    if pad:
        headers += "X-Pad: " + "x" * pad + "\r\n"
    if kind not in ("INVITE", "200"):  # 100, 180, ACK and BYE carry no body
        return (headers + "Content-Length: 0\r\n\r\n").encode()
    # the offer announces where the caller receives the call's RTP, the answer where the
    # callee does (the endpoints of the RTP frames below)
    (addr, port) = _rtp_ends(call)[0 if kind == "INVITE" else 1]
    ip = ".".join(str(b) for b in addr)
    body = (
        f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8\r\n"
    )
    return (
        headers + f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n" + body
    ).encode()


def frames(
    n: int, seed: int = 7, tcp_seq: dict[tuple[int, int], int] | None = None
) -> list[tuple[int, int, bytes]]:
    """``n`` frames of the mix, ``(ts_ns, linktype, frame)``, identical for the same seed.
    ``tcp_seq`` carries the SIP/TCP connections' next sequence numbers from one call to the
    next (a capture generated in parts)."""
    rnd = random.Random(seed)
    v4 = [_v4(k) for k in range(399)]
    v6 = [
        bytes.fromhex("20010db8000000000000000000000000")[:14] + bytes([i >> 8, i & 255])
        for i in range(1, 200)
    ]
    rtp_payload = bytes(rnd.randrange(256) for _ in range(160))
    out: list[tuple[int, int, bytes]] = []
    ts = 1_700_000_000_000_000_000
    seq = 0
    ident = 0
    tcp_seq = {} if tcp_seq is None else tcp_seq  # a SIP/TCP connection's next sequence
    while len(out) < n:
        ts += 20_000
        seq += 1
        r = rnd.random()
        call = rnd.randrange(1, 5000)
        if r < 0.84:
            hdr = struct.pack("!BBHII", 0x80, 0 if call % 3 else 8, seq & 0xFFFF, seq * 160, call)
            (_, sport), (_, dport) = _rtp_ends(call)
            if call % 10 == 0:
                l3 = _ipv6(
                    v6[call % 199], v6[(call + 7) % 199], 17, _udp(sport, dport, hdr + rtp_payload)
                )
                frame = _eth(l3, v6=True)
            else:
                l3 = _ipv4(
                    v4[call % 399], v4[(call + 11) % 399], 17, _udp(sport, dport, hdr + rtp_payload)
                )
                frame = _eth(l3, vlan=100 + call % 5 if call % 5 == 0 else None)
        elif r < 0.88:
            payload = (
                struct.pack("!BBH", 0x81, 200, 6) + bytes(24)
                if call % 2
                else b"\x12\x34\x01\x00" + bytes(30)
            )
            dport = 40001 if call % 2 else 53
            frame = _eth(
                _ipv4(v4[call % 399], v4[(call + 3) % 399], 17, _udp(30000, dport, payload))
            )
        elif r < 0.93:
            kind = rnd.choice(["INVITE", "100", "180", "200", "ACK", "BYE"])
            frame = _eth(
                _ipv4(v4[call % 399], v4[(call + 5) % 399], 17, _udp(5060, 5060, _sip(kind, call))),
                vlan=200 if call % 4 == 0 else None,
            )
        elif r < 0.97:
            if call % 2:
                # SIP over TCP: each connection's bytes in order (its sequence numbers follow
                # on), INVITEs and bare ACKs
                payload = _sip("INVITE", call) if call % 4 == 1 else b""
                sport = 50000 + call % 1000
                next_seq = tcp_seq.get((call % 399, sport), 1000 * call)
                tcp_seq[call % 399, sport] = next_seq + len(payload)
                seg = _tcp(
                    sport, 5060, next_seq & 0xFFFFFFFF, 1, 0x18 if payload else 0x10, payload
                )
            else:
                seg = _tcp(
                    443, 50000 + call % 1000, seq * 1400, 1, 0x10, bytes(rnd.randrange(0, 600))
                )
            frame = _eth(_ipv4(v4[call % 399], v4[(call + 9) % 399], 6, seg))
        elif r < 0.985:
            ident += 1
            udp = _udp(5060, 5060, _sip("INVITE", call, pad=2200 + call % 800))
            for off in range(0, len(udp), 1480):
                chunk = udp[off : off + 1480]
                more = 0x2000 if off + 1480 < len(udp) else 0
                out.append(
                    (
                        ts,
                        LINKTYPE_ETHERNET,
                        _eth(_ipv4(v4[call % 399], v4[1], 17, chunk, ident, more | off // 8)),
                    )
                )
            continue
        else:
            frame = _eth(
                _ipv6(v6[call % 199], v6[1], 17, _udp(5060, 5060, _sip("200", call))), v6=True
            )
        out.append((ts, LINKTYPE_ETHERNET, frame))
    return out[:n]


def write_pcap(path: str | Path, n: int, seed: int = 7) -> Path:
    """Write ``n`` frames of the mix as a nanosecond pcap file; returns the path."""
    path = Path(path)
    rec = struct.Struct("<IIII")
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        for ts, _, frame in frames(n, seed):
            f.write(rec.pack(ts // 1_000_000_000, ts % 1_000_000_000, len(frame), len(frame)))
            f.write(frame)
    return path


def write_large_pcap(path: str | Path, n: int, chunk: int = 100_000, seed: int = 7) -> Path:
    """Like :func:`write_pcap` for captures too large to hold in memory: the mix is generated
    ``chunk`` frames at a time (seed ``seed + k`` for chunk ``k``), timestamps kept increasing.
    """
    path = Path(path)
    rec = struct.Struct("<IIII")
    offset = 0
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        tcp_seq: dict[tuple[int, int], int] = {}  # the connections go on from part to part
        for k, start in enumerate(range(0, n, chunk)):
            part = frames(min(chunk, n - start), seed + k, tcp_seq)
            for ts0, _, frame in part:
                ts = ts0 + offset
                f.write(rec.pack(ts // 1_000_000_000, ts % 1_000_000_000, len(frame), len(frame)))
                f.write(frame)
            offset = part[-1][0] + offset - part[0][0] + 20_000
    return path
