"""The batch decoder: one C call per raw batch; only wanted packets become Python objects.

``Decoder.decode`` hands the whole batch to ``otus_decode`` (``_native/decode.c``), which fills
a columnar array of ``otus_dec_t`` and, per parser interest, the indices of the entries it
wants. A batch nobody wants costs O(1) Python work; ``DecodedBatch.datagrams`` and
``tcp_segments`` build objects for the wanted entries only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otus._decode.addresses import address_text
from otus._decode.layout import INDEX, NAMES, entry_struct
from otus._decode.options import DecoderOptions
from otus._decode.segments import TcpSegment
from otus.capture import RawBatch
from otus.errors import ConfigError
from otus.parsing import Datagram, Interest

__all__ = ["TUNNEL_KINDS", "DecodedBatch", "Decoder"]

MAX_INTERESTS = 32
_TRANSPORT_BITS = {"udp": 1, "tcp": 2, "sctp": 4}
_DETECTORS = {None: 0, "sip": 1}
#: ``otus_dec_t.tunnel`` values, by index.
TUNNEL_KINDS = ("none", "vxlan", "geneve", "gre", "erspan", "ipip")
_ST_OK = 0
_PROTO_TCP = 6
_PROTO_UDP = 17
_PROTO_SCTP = 132


class Decoder:
    """Decodes raw batches of one pipeline; holds the fragment reassembly state between them."""

    def __init__(self, options: DecoderOptions, interests: Sequence[Interest]) -> None:
        from otus._native import builders, load

        if len(interests) > MAX_INTERESTS:
            raise ConfigError(f"at most {MAX_INTERESTS} parsers per task (got {len(interests)})")
        ffi, lib = load()
        self._ffi = ffi
        self._lib = lib
        self._interests = tuple(interests)
        self._stream = tuple(i.tcp_stream for i in interests)
        cfg = ffi.new("otus_dec_config_t *")
        t = options.tunnels
        cfg.vxlan = t.vxlan
        cfg.geneve = t.geneve
        cfg.gre = t.gre
        cfg.erspan = t.erspan
        cfg.ipip = t.ipip
        # Counts and ranges are checked by TunnelOptions when the task is validated.
        for field, ports in (("vxlan_ports", t.vxlan_ports), ("geneve_ports", t.geneve_ports)):
            setattr(cfg, "n_" + field, len(ports))
            getattr(cfg, field)[0 : len(ports)] = ports
        r = options.ip_reassembly
        cfg.reassembly = r.enabled
        cfg.frag_timeout_ns = int(r.timeout * 1e9)
        cfg.frag_max_datagrams = r.max_datagrams
        cfg.frag_max_fragments = r.max_fragments_per_datagram
        cfg.frag_max_size = r.max_datagram_size
        cfg.frag_max_memory = r.max_memory
        raw = lib.otus_decoder_new(cfg)
        if raw == ffi.NULL:
            raise MemoryError("otus_decoder_new failed")
        self._d = ffi.gc(raw, lib.otus_decoder_free)
        for n, interest in enumerate(interests):
            self._add_interest(n, interest)
        self._n_stats = lib.otus_decoder_stat_count()
        self._stat_names = [
            ffi.string(lib.otus_decoder_stat_name(i)).decode() for i in range(self._n_stats)
        ]
        self._stat_buf = ffi.new("uint64_t[]", self._n_stats)
        self._alloc = ffi.new_allocator(should_clear_after_alloc=False)
        self._counts = ffi.new("uint32_t[]", MAX_INTERESTS)
        self._arena_len = ffi.new("uint64_t *")
        self._entry = entry_struct(ffi)
        self._builders = builders()
        self._n_interests = len(interests)

    def _add_interest(self, n: int, interest: Interest) -> None:
        ffi = self._ffi
        if interest.detector not in _DETECTORS:
            raise ConfigError(
                f"unknown detector {interest.detector!r}; known: "
                f"{sorted(d for d in _DETECTORS if d)}",
                path=f"parsers[{n}].interest.detector",
            )
        transports = 0
        for name in interest.transports:
            transports |= _TRANSPORT_BITS[name]
        ports = sorted(interest.ports)
        blob = b"".join(interest.prefixes)
        rc = self._lib.otus_decoder_add_interest(
            self._d,
            transports,
            _DETECTORS[interest.detector],
            ffi.new("uint16_t[]", ports) if ports else ffi.NULL,
            len(ports),
            ffi.from_buffer(blob) if blob else ffi.NULL,
            ffi.new("uint32_t[]", [len(p) for p in interest.prefixes])
            if interest.prefixes
            else ffi.NULL,
            len(interest.prefixes),
        )
        if rc != 0:
            raise MemoryError("otus_decoder_add_interest failed")

    def decode(self, batch: RawBatch) -> DecodedBatch:
        """Decode and classify every packet of ``batch`` (one C call)."""
        ffi = self._ffi
        n = batch.count
        cap = 2 * n + 16
        data = batch.data
        if isinstance(data, ffi.CData):
            cbuf = data
            buflen = ffi.sizeof(data)
        else:
            cbuf = ffi.from_buffer(data)
            buflen = len(cbuf)
        descs = batch.descs
        if not isinstance(descs, ffi.CData):
            descs = ffi.from_buffer("otus_pkt_t[]", descs)
        out = self._alloc("otus_dec_t[]", cap)
        stride = cap
        idx = self._alloc("int32_t[]", max(self._n_interests, 1) * cap)
        m = self._lib.otus_decode(
            self._d, cbuf, buflen, descs, n, out, cap, idx, stride, self._counts
        )
        counts = ffi.unpack(self._counts, self._n_interests) if self._n_interests else []
        arena = self._lib.otus_decoder_take_arena(self._d, self._arena_len)
        if arena != ffi.NULL:
            size = self._arena_len[0]
            owned = ffi.gc(arena, self._lib.otus_arena_free, size=size)
            arena = memoryview(ffi.buffer(owned, size))  # keeps ``owned`` alive
        else:
            arena = None
        return DecodedBatch(self, batch, out, m, idx, stride, counts, arena)

    def tick(self, now_ns: int) -> None:
        """Expire fragment reassembly state older than the timeout, in capture time."""
        self._lib.otus_decoder_tick(self._d, now_ns)

    def stats(self) -> dict[str, int]:
        """Counters (see docs/decoder.md): packets, decoded, error.<reason>, frag_*, tunnel.*…"""
        self._lib.otus_decoder_stats(self._d, self._stat_buf, self._n_stats)
        values = self._ffi.unpack(self._stat_buf, self._n_stats)
        return dict(zip(self._stat_names, values, strict=True))

    def status_name(self, status: int) -> str:
        """The reason name of an ``otus_dec_t.status`` value (``ok``, ``truncated_ip``, …)."""
        return str(self._ffi.string(self._lib.otus_status_name(status)).decode())


class DecodedBatch:
    """The decoded entries of one raw batch: one per packet, then reassembled datagrams.

    Payload memoryviews point into the raw batch buffer (or the batch's reassembly arena) and
    are valid until the raw batch is released.
    """

    __slots__ = (
        "_arena",
        "_counts",
        "_data_mv",
        "_dec",
        "_idx",
        "_out",
        "_out_mv",
        "_stride",
        "batch",
        "count",
    )

    def __init__(
        self,
        decoder: Decoder,
        batch: RawBatch,
        out: Any,
        count: int,
        idx: Any,
        stride: int,
        counts: list[int],
        arena: memoryview | None,
    ) -> None:
        self._dec = decoder
        self.batch = batch
        self._out = out
        self.count = count
        self._idx = idx
        self._stride = stride
        self._counts = counts
        self._arena = arena
        self._out_mv: memoryview | None = None
        self._data_mv: memoryview | None = None

    # -- wanted entries ------------------------------------------------------------------

    def wanted(self, parser_index: int) -> int:
        """How many entries interest ``parser_index`` matched."""
        return self._counts[parser_index] if parser_index < len(self._counts) else 0

    def indices(self, parser_index: int) -> list[int]:
        """Entry indices matched by interest ``parser_index``, in batch order."""
        k = self.wanted(parser_index)
        if not k:
            return []
        ffi = self._dec._ffi
        return list(ffi.unpack(self._idx + parser_index * self._stride, k))

    def _entries_mv(self) -> memoryview:
        if self._out_mv is None:
            ffi = self._dec._ffi
            self._out_mv = memoryview(ffi.buffer(self._out, self.count * ffi.sizeof("otus_dec_t")))
        return self._out_mv

    def _payload_views(self) -> tuple[memoryview, memoryview | None]:
        if self._data_mv is None:
            data = self.batch.data
            if isinstance(data, self._dec._ffi.CData):
                data = self._dec._ffi.buffer(data)
            self._data_mv = memoryview(data).cast("B")
        return self._data_mv, self._arena

    def _payload(self, buf: int, off: int, length: int) -> memoryview:
        data, arena = self._payload_views()
        src = arena if buf and arena is not None else data
        return src[off : off + length]

    def _index_args(self, parser_index: int) -> tuple[int, int, int]:
        """The entry array's address, the interest's index list's address and its length."""
        ffi = self._dec._ffi
        idx = int(ffi.cast("uintptr_t", self._idx)) + 4 * parser_index * self._stride
        return int(ffi.cast("uintptr_t", self._out)), idx, self.wanted(parser_index)

    def datagrams(self, parser_index: int) -> list[Datagram]:
        """UDP/SCTP payloads (and TCP segments unless the parser wants streams) it asked for,
        built in C (``_native/pyapi/build.c``); payloads are views into the batch."""
        if not self.wanted(parser_index):
            return []
        data, arena = self._payload_views()
        skip_tcp = _PROTO_TCP if self._dec._stream[parser_index] else -1
        out: list[Datagram] = self._dec._builders.datagrams(
            *self._index_args(parser_index), skip_tcp, data, arena
        )
        return out

    def tcp_segments(self, parser_index: int) -> list[TcpSegment]:
        """TCP segments for a stream parser, built in C (payload copied: it outlives the
        batch)."""
        if not self._dec._stream[parser_index] or not self.wanted(parser_index):
            return []
        data, arena = self._payload_views()
        out: list[TcpSegment] = self._dec._builders.segments(
            *self._index_args(parser_index), data, arena, parser_index
        )
        return out

    # -- columns and rows (tests, benchmarks, debugging) ----------------------------------

    def column(self, name: str) -> list[Any]:
        """One field of every entry (``status``, ``src_port``, …), raw as C stores it."""
        if name not in INDEX:
            raise KeyError(f"no column {name!r}; columns: {', '.join(NAMES)}")
        out = self._out
        return [getattr(out[i], name) for i in range(self.count)]

    def row(self, i: int) -> dict[str, Any]:
        """Entry ``i`` as a dict: raw fields plus ``src``/``dst``/``outer_*`` text,
        ``status_name``, ``tunnel_kind`` and ``payload`` (bytes)."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        e = self._dec._entry.unpack_from(self._entries_mv(), i * self._dec._entry.size)
        r = dict(zip(NAMES, e, strict=True))
        text = address_text
        r["src"] = text(r["src_ip"], r["ip_version"])
        r["dst"] = text(r["dst_ip"], r["ip_version"])
        r["outer_src_text"] = text(r["outer_src"], r["outer_version"])
        r["outer_dst_text"] = text(r["outer_dst"], r["outer_version"])
        r["status_name"] = self._dec.status_name(r["status"])
        r["tunnel_kind"] = TUNNEL_KINDS[r["tunnel"]]
        r["payload"] = bytes(self._payload(r["buf"], r["payload_offset"], r["payload_len"]))
        return r

    def rows(self) -> list[dict[str, Any]]:
        """Every entry as :meth:`row` gives it."""
        return [self.row(i) for i in range(self.count)]
