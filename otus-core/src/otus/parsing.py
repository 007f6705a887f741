"""The parser interface (design §3, stage 4).

A parser declares cheaply what it wants (:class:`Interest`); the C decoder classifies every
packet against all declared interests, so packets no parser wants never reach Python. The
parser then receives, per batch, the :class:`Datagram` objects it asked for (UDP, SCTP, or TCP
segments as they come) or, when it set ``tcp_stream``, the ordered :class:`StreamChunk` objects
of the TCP reassembler.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

from otus.records import Record

__all__ = ["Datagram", "Interest", "Parser", "StreamChunk"]

TRANSPORTS = frozenset({"udp", "tcp", "sctp"})


@dataclass(frozen=True)
class Interest:
    """What a parser wants to see.

    A packet of one of ``transports`` is handed to the parser when its source or destination
    port is in ``ports``, or its payload starts with one of ``prefixes``, or the built-in
    ``detector`` (a C heuristic in the decoder; ``"sip"`` recognises a SIP start line) accepts
    it. With no ports, prefixes or detector, every packet of those transports is wanted.
    With ``tcp_stream``, TCP payloads go through stream reassembly and arrive via
    :meth:`Parser.parse_stream`; otherwise TCP segments arrive as datagrams.
    """

    transports: frozenset[str] = frozenset({"udp"})
    ports: frozenset[int] = frozenset()
    prefixes: tuple[bytes, ...] = ()
    detector: str | None = None
    tcp_stream: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.transports) - TRANSPORTS
        if unknown:
            raise ValueError(f"unknown transport(s) {sorted(unknown)}; use {sorted(TRANSPORTS)}")
        bad = [p for p in self.ports if not 0 < p < 65536]
        if bad:
            raise ValueError(f"port(s) out of range: {bad}")


class Datagram:
    """One L4 payload with its addresses. ``payload`` is valid only during the parse call."""

    __slots__ = (
        "dst_ip",
        "dst_port",
        "ifindex",
        "payload",
        "protocol",
        "src_ip",
        "src_port",
        "ts_ns",
        "vlan_id",
    )

    def __init__(
        self,
        ts_ns: int,
        src_ip: str,
        dst_ip: str,
        src_port: int,
        dst_port: int,
        protocol: int,
        payload: memoryview | bytes,
        vlan_id: int = 0,
        ifindex: int = 0,
    ) -> None:
        self.ts_ns = ts_ns
        self.src_ip = src_ip
        self.dst_ip = dst_ip
        self.src_port = src_port
        self.dst_port = dst_port
        self.protocol = protocol
        self.payload = payload
        self.vlan_id = vlan_id
        self.ifindex = ifindex


@dataclass(slots=True)
class StreamChunk:
    """In-order bytes of one direction of a TCP connection.

    ``gap`` is the number of bytes known to be missing before ``data`` (``-1``: unknown, e.g. the
    first chunk after a mid-stream join). ``end`` marks the last chunk of this direction (FIN,
    RST, idle timeout or eviction); ``data`` may then be empty. The flow is identified by its
    addresses in the direction of the data.
    """

    ts_ns: int
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    data: bytes
    gap: int = 0
    end: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def flow(self) -> tuple[str, int, str, int]:
        return (self.src_ip, self.src_port, self.dst_ip, self.dst_port)


class Parser(abc.ABC):
    """Turns L4 payloads into records. One instance per pipeline; never shared across threads."""

    #: The ``payload_type`` of the records this parser makes (``"sip"``).
    payload_type: str = "raw"

    @abc.abstractmethod
    def interest(self) -> Interest:
        """What this parser wants; asked once when the pipeline is built."""

    @abc.abstractmethod
    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        """Parse a batch of datagrams; a payload that fails to parse is counted, not raised."""

    def parse_stream(self, chunks: Sequence[StreamChunk]) -> list[Record]:
        """Parse reassembled TCP data (only called when ``interest().tcp_stream`` is set)."""
        return []

    def tick(self, now_ns: int) -> list[Record]:
        """Called about once a second with capture time: expire state, emit timed-out records."""
        return []

    def close(self) -> list[Record]:
        """Flush what is pending at the end of the capture."""
        return []

    def stats(self) -> dict[str, int]:
        """Plain counters. Keys ``messages`` and ``error.<reason>`` (parse errors by reason)."""
        return {}
