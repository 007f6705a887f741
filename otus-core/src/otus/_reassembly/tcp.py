"""TCP stream reassembly: per-direction ordered byte streams for the parsers that want them.

Policy (docs/reassembly-tcp.md): the first copy of a byte wins (later retransmissions and
overlaps are trimmed away); out-of-order data is held up to a per-flow bound, past which the
oldest hole is skipped and reported as a gap; a connection joined mid-stream starts at the first
segment seen (first chunk ``gap=-1``); FIN, RST, idle timeout, eviction and the end of the
capture close a direction with an ``end=True`` chunk. Everything is counted in :meth:`stats`.

Sequence numbers are unwrapped to unbounded integers relative to the next expected byte, so a
stream crossing 2**32 needs no special case.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from operator import itemgetter

from otus._decode.options import TcpReassemblyOptions
from otus._decode.segments import TCP_FIN, TCP_RST, TCP_SYN, TcpSegment
from otus.parsing import StreamChunk

__all__ = ["TcpReassembler", "TcpStreamOutput"]

_MASK = 0xFFFFFFFF
_HALF = 1 << 31
_first = itemgetter(0)

#: What :meth:`TcpReassembler.add` returns: ``(parser index, chunk)`` in stream order.
TcpStreamOutput = list[tuple[int, StreamChunk]]

_Key = tuple[str, int, str, int]
#: A held out-of-order piece: (absolute start, bytes).
_Piece = tuple[int, bytes]


class _Dir:
    """One direction of a connection: the next byte expected and what is held beyond it."""

    __slots__ = (
        "dst_ip",
        "dst_port",
        "ended",
        "fin",
        "flow",
        "gap",
        "held",
        "hole_ns",
        "isn",
        "key",
        "next",
        "src_ip",
        "src_port",
    )

    def __init__(self, flow: _Flow, key: _Key, start: int, gap: int, isn: int | None) -> None:
        self.flow = flow
        self.key = key
        self.src_ip, self.src_port, self.dst_ip, self.dst_port = key
        self.next = start  # absolute sequence number of the next byte to deliver
        self.gap = gap  # to report with the next chunk (-1: unknown, mid-stream join)
        self.held: list[_Piece] = []  # sorted, non-overlapping, every start > next
        self.hole_ns = 0  # capture time since when the first hole has been waiting
        self.fin: int | None = None  # absolute sequence number where the stream ends
        self.isn = isn
        self.ended = False


class _Flow:
    """Both directions of one connection, with its parser and activity time."""

    __slots__ = ("dirs", "held", "key", "last_ns", "parser")

    def __init__(self, key: _Key, parser: int, ts_ns: int) -> None:
        self.key = key
        self.parser = parser
        self.last_ns = ts_ns
        self.held = 0  # out-of-order bytes held in both directions
        self.dirs: list[_Dir] = []


class TcpReassembler:
    """Reassembles the TCP segments of many flows into :class:`StreamChunk` objects.

    ``add`` takes one batch of segments and returns ``(parser_index, chunk)`` pairs in order,
    where ``parser_index`` is the :attr:`TcpSegment.parser` of the segment that opened the flow.
    Call ``tick`` with capture time about once a second and ``close`` at the end of the capture.
    """

    def __init__(self, options: TcpReassemblyOptions) -> None:
        self.options = options
        self._idle_ns = int(options.idle_timeout * 1e9)
        self._hole_ns = int(options.hole_timeout * 1e9)
        # directions holding data behind a hole, oldest hole first
        self._holes: OrderedDict[_Key, _Dir] = OrderedDict()
        self._max_flows = options.max_flows
        self._max_ooo = options.max_out_of_order_bytes_per_flow
        self._max_memory = options.max_memory
        self._dirs: dict[_Key, _Dir] = {}
        self._flows: OrderedDict[_Key, _Flow] = OrderedDict()  # least recently active first
        self._held = 0
        self._segments = 0
        self._bytes = 0
        self._gaps = 0
        self._gap_bytes = 0
        self._retrans = 0
        self._overlaps = 0
        self._ooo = 0
        self._ignored = 0
        self._evicted = {"memory": 0, "max_flows": 0, "ooo_limit": 0}
        self._hole_timeouts = 0  # holes skipped by age: bytes the capture missed, not a drop
        self._closed = {"fin": 0, "rst": 0, "idle": 0, "reuse": 0, "end": 0}

    # -- public -------------------------------------------------------------------------------

    def add(self, segments: Sequence[TcpSegment]) -> TcpStreamOutput:
        """Feed one batch of segments; return the chunks that became deliverable."""
        out: TcpStreamOutput = []
        dirs = self._dirs
        flows = self._flows
        self._segments += len(segments)
        for s in segments:
            key = (s.src_ip, s.src_port, s.dst_ip, s.dst_port)
            d = dirs.get(key)
            flags = s.flags
            if d is None or (flags & TCP_SYN and d.isn != s.seq):
                d = self._open(s, key, d, out)
                if d is None:
                    continue
            flow = d.flow
            flow.last_ns = s.ts_ns
            flows.move_to_end(flow.key)
            if flags & TCP_RST:
                self._close(flow, s.ts_ns, "rst", out)
                continue
            if d.ended:
                if s.payload:
                    self._retrans += 1
                continue
            payload = s.payload
            nxt = d.next
            a = nxt + ((s.seq - nxt + _HALF) & _MASK) - _HALF
            if payload:
                if a == nxt and not d.held:
                    out.append(
                        (
                            flow.parser,
                            StreamChunk(
                                s.ts_ns, d.src_ip, d.dst_ip, d.src_port, d.dst_port, payload, d.gap
                            ),
                        )
                    )
                    d.gap = 0
                    d.next = nxt + len(payload)
                    self._bytes += len(payload)
                else:
                    self._insert(d, a, payload, s.ts_ns, out)
            if flags & TCP_FIN:
                d.fin = a + len(payload)
            if d.fin is not None and d.next >= d.fin and not d.ended:
                self._end(d, s.ts_ns, out)
            # both directions finished: forget the flow (one direction alone lingers until idle,
            # so that the other one still joins it)
            if (
                d.fin is not None
                and len(flow.dirs) == 2
                and all(x.ended for x in flow.dirs)
                and flows.get(flow.key) is flow
            ):
                self._remove(flow)
                self._closed["fin"] += 1
        return out

    def tick(self, now_ns: int) -> TcpStreamOutput:
        """Skip holes older than ``hole_timeout`` and close flows idle for longer than
        ``idle_timeout``, both in capture time."""
        out: TcpStreamOutput = []
        holes = self._holes
        limit = now_ns - self._hole_ns
        while holes:
            d = next(iter(holes.values()))
            if d.hole_ns > limit:
                break
            self._skip_hole(d, now_ns, out)  # re-queues d (timed from now) if a hole remains
            self._hole_timeouts += 1
        limit = now_ns - self._idle_ns
        flows = self._flows
        while flows:
            flow = next(iter(flows.values()))
            if flow.last_ns >= limit:
                break
            self._close(flow, now_ns, "idle", out)
        return out

    def close(self) -> TcpStreamOutput:
        """End of capture: deliver everything held (holes become gaps) and end every stream."""
        out: TcpStreamOutput = []
        for flow in list(self._flows.values()):
            self._close(flow, flow.last_ns, "end", out)
        return out

    def stats(self) -> dict[str, int]:
        out = {
            "active_flows": len(self._flows),
            "held_bytes": self._held,
            "segments": self._segments,
            "bytes": self._bytes,
            "gaps": self._gaps,
            "gap_bytes": self._gap_bytes,
            "retransmissions": self._retrans,
            "overlaps": self._overlaps,
            "out_of_order_held": self._ooo,
            "hole_timeouts": self._hole_timeouts,
            "ignored": self._ignored,
        }
        for reason, n in self._evicted.items():
            out[f"evicted.{reason}"] = n
        for reason, n in self._closed.items():
            out[f"closed.{reason}"] = n
        return out

    # -- flows --------------------------------------------------------------------------------

    def _open(
        self, s: TcpSegment, key: _Key, old: _Dir | None, out: TcpStreamOutput
    ) -> _Dir | None:
        """Start a direction for ``s`` (a new connection, or a SYN reusing the ports)."""
        syn = bool(s.flags & TCP_SYN)
        if old is not None:  # a SYN with a new initial sequence number: the ports are reused
            self._close(old.flow, s.ts_ns, "reuse", out)
        rkey = (s.dst_ip, s.dst_port, s.src_ip, s.src_port)
        rev = self._dirs.get(rkey)
        if rev is None:
            if s.flags & TCP_RST or not (s.payload or syn):
                self._ignored += 1  # nothing to deliver for a flow we never saw
                return None
            if len(self._flows) >= self._max_flows:
                victim = next(iter(self._flows.values()))
                self._close(victim, s.ts_ns, None, out)
                self._evicted["max_flows"] += 1
            flow = _Flow(key, s.parser, s.ts_ns)
            self._flows[key] = flow
        else:
            flow = rev.flow
        # after a SYN the stream starts at ISN + 1; joined mid-stream, at the first segment seen
        d = _Dir(flow, key, s.seq + 1, 0, s.seq) if syn else _Dir(flow, key, s.seq, -1, None)
        flow.dirs.append(d)
        self._dirs[key] = d
        return d

    def _remove(self, flow: _Flow) -> None:
        for d in flow.dirs:
            if self._dirs.get(d.key) is d:
                del self._dirs[d.key]
            if self._holes.get(d.key) is d:
                del self._holes[d.key]
        self._flows.pop(flow.key, None)
        self._held -= flow.held
        flow.held = 0

    def _close(self, flow: _Flow, ts_ns: int, reason: str | None, out: TcpStreamOutput) -> None:
        """Deliver what is held (holes become gaps), end both directions, forget the flow."""
        for d in flow.dirs:
            if not d.ended:
                while d.held:
                    self._skip_hole(d, ts_ns, out)
                if d.fin is not None and d.fin > d.next:
                    self._count_gap(d, d.fin - d.next)
                    d.next = d.fin
                self._end(d, ts_ns, out)
        self._remove(flow)
        if reason is not None:
            self._closed[reason] += 1

    def _end(self, d: _Dir, ts_ns: int, out: TcpStreamOutput) -> None:
        d.ended = True
        out.append(
            (
                d.flow.parser,
                StreamChunk(ts_ns, d.src_ip, d.dst_ip, d.src_port, d.dst_port, b"", d.gap, True),
            )
        )
        d.gap = 0

    # -- out of order -------------------------------------------------------------------------

    def _insert(self, d: _Dir, a: int, data: bytes, ts_ns: int, out: TcpStreamOutput) -> None:
        """Place a segment that is not simply the next one; the first copy of a byte wins."""
        nxt = d.next
        end = a + len(data)
        if end <= nxt:
            self._retrans += 1
            return
        overlapped = False
        if a < nxt:
            data = data[nxt - a :]
            a = nxt
            overlapped = True
        held = d.held
        pieces: list[_Piece] = []
        if held:
            for hs, hd in held:  # held is short; trim the new data against every held piece
                he = hs + len(hd)
                if he <= a:
                    continue
                if hs >= end:
                    break
                overlapped = True
                if hs > a:
                    pieces.append((a, data[: hs - a]))
                if he >= end:
                    data = b""
                    a = end
                    break
                data = data[he - a :]
                a = he
        if data:
            pieces.append((a, data))
        if not pieces:
            self._retrans += 1
            return
        if overlapped:
            self._overlaps += 1
        added = 0
        for _, piece in pieces:
            added += len(piece)
        if not held:  # the first hole of this direction: its wait starts now
            d.hole_ns = ts_ns
            self._holes[d.key] = d
        held.extend(pieces)
        if len(held) > len(pieces):
            held.sort(key=_first)
        flow = d.flow
        flow.held += added
        self._held += added
        if held[0][0] != nxt:
            self._ooo += 1
        self._drain(d, ts_ns, out)
        if flow.held > self._max_ooo:
            while flow.held > self._max_ooo:
                victim = d if d.held else next(x for x in flow.dirs if x.held)
                self._skip_hole(victim, ts_ns, out)
                self._evicted["ooo_limit"] += 1
        if self._held > self._max_memory:
            self._evict_memory(flow, ts_ns, out)

    def _drain(self, d: _Dir, ts_ns: int, out: TcpStreamOutput) -> None:
        """Deliver the held pieces that now continue the stream, as one chunk."""
        held = d.held
        nxt = d.next
        k = 0
        while k < len(held) and held[k][0] == nxt:
            nxt += len(held[k][1])
            k += 1
        if not k:
            return
        data = held[0][1] if k == 1 else b"".join(p for _, p in held[:k])
        del held[:k]
        if held:  # another hole behind: it waits from now
            d.hole_ns = ts_ns
            self._holes[d.key] = d
            self._holes.move_to_end(d.key)
        else:
            self._holes.pop(d.key, None)
        size = nxt - d.next
        d.next = nxt
        d.flow.held -= size
        self._held -= size
        self._bytes += size
        out.append(
            (
                d.flow.parser,
                StreamChunk(ts_ns, d.src_ip, d.dst_ip, d.src_port, d.dst_port, data, d.gap),
            )
        )
        d.gap = 0
        if d.fin is not None and d.next >= d.fin and not d.ended:
            self._end(d, ts_ns, out)

    def _skip_hole(self, d: _Dir, ts_ns: int, out: TcpStreamOutput) -> None:
        """Give up on the first hole of ``d``: report it as a gap and deliver what follows."""
        self._count_gap(d, d.held[0][0] - d.next)
        d.next = d.held[0][0]
        self._drain(d, ts_ns, out)

    def _count_gap(self, d: _Dir, size: int) -> None:
        self._gaps += 1
        self._gap_bytes += size
        if d.gap >= 0:  # a gap after an unknown start stays unknown
            d.gap += size

    def _evict_memory(self, current: _Flow, ts_ns: int, out: TcpStreamOutput) -> None:
        """Over the global cap: close the least recently active flows that hold data."""
        for flow in list(self._flows.values()):
            if self._held <= self._max_memory:
                break
            if flow.held:
                self._close(flow, ts_ns, None, out)
                self._evicted["memory"] += 1
