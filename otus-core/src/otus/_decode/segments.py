"""TCP segments as the decoder hands them to the TCP stream reassembler."""

from __future__ import annotations

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10


class TcpSegment:
    """One TCP segment of a flow a stream parser wants; ``payload`` is an owned copy."""

    __slots__ = (
        "ack",
        "dst_ip",
        "dst_port",
        "flags",
        "parser",
        "payload",
        "seq",
        "src_ip",
        "src_port",
        "ts_ns",
    )  # fmt: skip

    def __init__(
        self,
        ts_ns: int,
        src_ip: str,
        dst_ip: str,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes,
        parser: int = 0,
    ) -> None:
        self.ts_ns = ts_ns
        self.src_ip = src_ip
        self.dst_ip = dst_ip
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.parser = parser  # index of the stream parser that wants this flow
