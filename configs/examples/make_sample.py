"""Regenerate ``sip-call.pcap``: one SIP call (INVITE, 100, 200, ACK, BYE, 200) over UDP.

Built with ``otus.testing`` packet builders between documentation addresses (RFC 5737);
run ``python configs/examples/make_sample.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

from otus.testing.packets import ethernet_udp_frame, write_pcap

A, B = "192.0.2.10", "192.0.2.20"
CALL = "a84b4c76e66710@demo.example"


def message(start: str, cseq: str, *, request: bool, body: str = "") -> bytes:
    via = f"SIP/2.0/UDP {A}:5060;branch=z9hG4bK776asdhds"
    headers = [
        start,
        f"Via: {via}",
        "Max-Forwards: 70" if request else None,
        "From: Alice <sip:alice@demo.example>;tag=1928301774",
        "To: Bob <sip:bob@demo.example>"
        + ("" if start.startswith(("INVITE", "SIP/2.0 100")) else ";tag=a6c85cf"),
        f"Call-ID: {CALL}",
        f"CSeq: {cseq}",
        f"Contact: <sip:alice@{A}>" if start.startswith("INVITE") else None,
        "Content-Type: application/sdp" if body else None,
        f"Content-Length: {len(body)}",
    ]
    text = "\r\n".join(h for h in headers if h is not None) + "\r\n\r\n" + body
    return text.encode()


SDP = (
    f"v=0\r\no=alice 2890844526 2890844526 IN IP4 {A}\r\ns=-\r\nc=IN IP4 {A}\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

FLOW = [
    (A, B, message("INVITE sip:bob@demo.example SIP/2.0", "1 INVITE", request=True, body=SDP)),
    (B, A, message("SIP/2.0 100 Trying", "1 INVITE", request=False)),
    (B, A, message("SIP/2.0 200 OK", "1 INVITE", request=False)),
    (A, B, message("ACK sip:bob@demo.example SIP/2.0", "1 ACK", request=True)),
    (A, B, message("BYE sip:bob@demo.example SIP/2.0", "2 BYE", request=True)),
    (B, A, message("SIP/2.0 200 OK", "2 BYE", request=False)),
]

if __name__ == "__main__":
    frames = [ethernet_udp_frame(p, src=s, dst=d, sport=5060, dport=5060) for s, d, p in FLOW]
    print(write_pcap(Path(__file__).with_name("sip-call.pcap"), frames))
