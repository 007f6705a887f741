"""The media flow registry: RTP/RTCP endpoints announced by SDP, shared with other parsers.

The SIP parser publishes one instance per pipeline in ``context.shared["media_flows"]``; an RTP
parser looks packets up by destination (or source) address. Entries are bounded in number and
expire when their call ends or times out.

``MediaFlowRegistry`` is the C table of the ``_sip_fast`` extension (``_native/sip_media.c``:
flows as plain structs, hashed on the address and port, chained in registration order and per
call; the batch path registers an SDP's endpoints straight from its description) when the
extension is built, else ``PyMediaFlowRegistry`` below; both behave the same, operation for
operation. The C table keeps no ``MediaFlow`` objects: ``lookup``, ``flows_of`` and ``flows``
build new ones (equal, not identical, from call to call).

Expiry costs what expires, not what is registered: flows are kept in registration order, and a
flow's own expiry (registration time plus the parser's media timeout) grows along it, so
``expire`` reads from the oldest registration up to the first live one; flows whose expiry
``end_call`` brought forward are found through the calls that ended, queued in the order they
ended. (A flow registered out of that order, a capture-time step backwards, is removed once
the flows before it are.)
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["MediaFlow", "MediaFlowRegistry", "PyMediaFlowRegistry"]


@dataclass(slots=True)
class MediaFlow:
    """One receiving endpoint: ``kind`` is ``rtp`` or ``rtcp`` (or ``rtp+rtcp`` with rtcp-mux)."""

    ip: str
    port: int
    kind: str
    call_id: str
    media: str
    codecs: dict[str, str]
    expires_ns: int


class PyMediaFlowRegistry:
    """Lookup of media flows by ``(ip, port)``; least recently registered evicted when full.

    The pure-Python registry (the C table's reference, used without the extension)."""

    def __init__(self, max_flows: int = 200000) -> None:
        self.max_flows = max_flows
        #: (ip, port) -> flow, in order of registration (a registration takes the key out and
        #: in again, so the oldest is first). An OrderedDict, not a dict: taking the oldest out
        #: of a dict walks the deleted entries in front of it, which at capacity (one eviction
        #: per registration) grow to hundreds of thousands between the dict's compactions.
        self._flows: OrderedDict[tuple[str, int], MediaFlow] = OrderedDict()
        self._by_call: dict[str, set[tuple[str, int]]] = {}
        #: (expiry, Call-ID) of calls that ended, in the order they ended (``end_call``);
        #: bounded: without ``expire`` calls the oldest are dropped (their flows then go when
        #: their own expiry comes or the call is removed).
        self._ended: deque[tuple[int, str]] = deque(maxlen=max(1024, max_flows))
        self.registered = 0
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._flows)

    def register(self, flow: MediaFlow) -> None:
        """Add or refresh an endpoint (a later SDP for the same address wins)."""
        key = (flow.ip, flow.port)
        flows = self._flows
        old = flows.pop(key, None)
        call_id = flow.call_id
        if old is not None and old.call_id != call_id:
            self._unlink(old.call_id, key)
        flows[key] = flow
        keys = self._by_call.get(call_id)
        if keys is None:
            self._by_call[call_id] = {key}
        else:
            keys.add(key)
        self.registered += 1
        if len(flows) > self.max_flows:
            while len(flows) > self.max_flows:
                k, victim = flows.popitem(last=False)  # the least recently registered
                self._unlink(victim.call_id, k)
                self.evicted += 1

    def lookup(self, ip: str, port: int) -> MediaFlow | None:
        """The flow receiving at ``ip:port``, if any."""
        return self._flows.get((ip, port))

    def flows_of(self, call_id: str) -> list[MediaFlow]:
        """Every endpoint registered by one call."""
        return [self._flows[k] for k in self._by_call.get(call_id, ()) if k in self._flows]

    def end_call(self, call_id: str, expires_ns: int) -> None:
        """The call ended: its flows expire at ``expires_ns`` (late packets still match)."""
        for key in self._by_call.get(call_id, ()):
            flow = self._flows.get(key)
            if flow is not None:
                flow.expires_ns = min(flow.expires_ns, expires_ns)
        self._ended.append((expires_ns, call_id))

    def remove_call(self, call_id: str) -> None:
        """Forget every flow of a call now."""
        for key in self._by_call.pop(call_id, ()):
            if self._flows.pop(key, None) is not None:
                self.expired += 1

    def expire(self, now_ns: int) -> int:
        """Drop flows whose expiry has passed; returns how many."""
        flows = self._flows
        dead: list[tuple[str, int]] = []
        ended = self._ended
        while ended and ended[0][0] <= now_ns:
            _, call_id = ended.popleft()
            for key in self._by_call.get(call_id, ()):
                flow = flows.get(key)
                if flow is not None and flow.expires_ns <= now_ns:
                    dead.append(key)
        for key, flow in flows.items():  # oldest registration first
            if flow.expires_ns > now_ns:
                break
            dead.append(key)
        n = 0
        for key in dead:
            flow = flows.pop(key, None)
            if flow is not None:  # a key can be found both ways
                self._unlink(flow.call_id, key)
                n += 1
        self.expired += n
        return n

    def _unlink(self, call_id: str, key: tuple[str, int]) -> None:
        keys = self._by_call.get(call_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_call[call_id]

    def stats(self) -> dict[str, int]:
        return {
            "media.active": len(self._flows),
            "media.registered": self.registered,
            "media.evicted": self.evicted,
            "media.expired": self.expired,
        }

    def flows(self) -> list[MediaFlow]:
        """Every flow, least recently registered first (tests and debugging)."""
        return list(self._flows.values())

    def calls(self) -> dict[str, list[tuple[str, int]]]:
        """The ``(ip, port)`` endpoints of each call holding flows (tests and debugging)."""
        return {call_id: list(keys) for call_id, keys in self._by_call.items()}

    def ended(self) -> list[tuple[int, str]]:
        """``(expiry, Call-ID)`` of the ended calls ``expire`` has yet to read, oldest first."""
        return list(self._ended)


def _native() -> type[PyMediaFlowRegistry] | None:
    """The C table as a ``MediaFlowRegistry`` class, or None without the extension."""
    try:
        table: Any = import_module("otus_parser_sip._native._sip_fast").MediaTable
    except ImportError:
        return None

    class MediaFlowRegistry(table):  # type: ignore[misc]
        """Lookup of media flows by ``(ip, port)``; least recently registered evicted when
        full (the C table, ``_native/sip_media.c``)."""

        __slots__ = ()

        def __init__(self, max_flows: int = 200000) -> None:
            super().__init__(max_flows, MediaFlow)

    MediaFlowRegistry.__module__ = __name__
    MediaFlowRegistry.__qualname__ = "MediaFlowRegistry"
    return MediaFlowRegistry


if TYPE_CHECKING:
    MediaFlowRegistry = PyMediaFlowRegistry
else:
    MediaFlowRegistry = _native() or PyMediaFlowRegistry
