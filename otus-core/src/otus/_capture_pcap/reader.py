"""Turns a capture file into raw batches: Python reads big chunks, C walks the records.

A chunk is a large ``bytearray``; each call of ``otus_pcap_walk`` fills one batch of
descriptors pointing into it. A record cut by the end of a full chunk is copied to the start
of the next one. Batches share their chunk; chunks and descriptor arrays go back to small pools
when every batch using them has been released, so a long file runs in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from otus._capture_pcap.source import Source
from otus.capture import PACKET_DESC, RawBatch
from otus.errors import CaptureError

CHUNK_SIZE = 4 * 1024 * 1024
_POOL_MAX = 4
#: Why a compressed file stopped before its end marker.
_CUT_SHORT = "the gzip data ends early: a truncated file, or one still being written"


class _Chunk:
    """A read buffer and the number of batches (plus the reader itself) still using it."""

    __slots__ = ("buf", "users")

    def __init__(self, size: int) -> None:
        self.buf = bytearray(size)
        self.users = 1


class PcapReader:
    """One pass over one :class:`Source`; ``stats()`` counts what was walked so far."""

    def __init__(
        self,
        source: Source,
        *,
        batch_packets: int = 4096,
        batch_bytes: int = 4 * 1024 * 1024,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        from otus._native import load

        self._ffi, self._lib = load()
        self.source = source
        self._st: Any = self._ffi.new("otus_pcap_state_t *")
        self._batch_packets = batch_packets
        self._batch_bytes = batch_bytes
        self._chunk_size = chunk_size
        self._chunks: list[_Chunk] = []
        self._descs: list[bytearray] = []
        self._out = self._ffi.new("size_t *")
        self._npkts = self._ffi.new("uint32_t *")
        self.errors: dict[str, int] = {}

    def _chunk(self, need: int) -> _Chunk:
        while self._chunks:
            chunk = self._chunks.pop()
            if len(chunk.buf) >= need:
                chunk.users = 1
                return chunk
        return _Chunk(max(self._chunk_size, need))

    def _unuse(self, chunk: _Chunk) -> None:
        chunk.users -= 1
        if chunk.users == 0 and len(self._chunks) < _POOL_MAX:
            self._chunks.append(chunk)

    def _release(self, chunk: _Chunk, descs: bytearray) -> Any:
        def release() -> None:
            if len(self._descs) < _POOL_MAX * 4:
                self._descs.append(descs)
            self._unuse(chunk)

        return release

    def batches(self, max_span_ns: int = 0) -> Iterator[RawBatch]:
        """Yield batches until the end of the file; raise one :class:`CaptureError` at damage.

        With ``max_span_ns`` a batch never spans more capture time than that (for pacing).
        """
        ffi, lib, st = self._ffi, self._lib, self._st
        chunk = self._chunk(self._chunk_size)
        buf = chunk.buf
        cbuf = ffi.from_buffer(buf)
        base = 0  # offset in the (uncompressed) file of buf[0]
        start = end = 0
        eof = False
        read_more = True
        desc_size = PACKET_DESC.size
        try:
            while True:
                if read_more and not eof:
                    got = self.source.readinto(memoryview(buf)[end:])
                    if got == 0:
                        eof = True
                    end += got
                descs = self._descs.pop() if self._descs else None
                if descs is None or len(descs) < self._batch_packets * desc_size:
                    descs = bytearray(self._batch_packets * desc_size)
                rc = lib.otus_pcap_walk(
                    st,
                    cbuf,
                    start,
                    end,
                    eof,
                    ffi.from_buffer("otus_pkt_t[]", descs),
                    self._batch_packets,
                    self._batch_bytes,
                    max_span_ns,
                    self._out,
                    self._npkts,
                )
                start = self._out[0]
                count = self._npkts[0]
                if count:
                    chunk.users += 1
                    yield RawBatch(buf, descs, count, self._release(chunk, descs))
                else:
                    self._descs.append(descs)
                if rc == lib.OTUS_PCAP_LIMIT:
                    read_more = False
                    continue
                if rc == lib.OTUS_PCAP_END:
                    if self.source.cut_short:  # whole records, then the gzip data stops
                        self.errors["truncated"] = self.errors.get("truncated", 0) + 1
                        raise CaptureError(
                            f"{self.source.name}: truncated after record {int(st.records)} at "
                            f"byte {base + end} of the uncompressed data ({_CUT_SHORT})"
                        )
                    return
                if rc == lib.OTUS_PCAP_ERROR:
                    raise self._error(base)
                # NEED_MORE: make room for the record that is cut, then read
                read_more = True
                need = max(int(st.need), end - start + 1)
                if end == len(buf) or len(buf) - start < need:
                    fresh = self._chunk(max(need, self._chunk_size))
                    carry = end - start
                    fresh.buf[:carry] = buf[start:end]
                    self._unuse(chunk)
                    chunk, buf = fresh, fresh.buf
                    cbuf = ffi.from_buffer(buf)
                    base += start
                    start, end = 0, carry
        finally:
            self._unuse(chunk)

    def _error(self, base: int) -> CaptureError:
        ffi, st = self._ffi, self._st
        what = ffi.string(st.err_what).decode()
        detail = ffi.string(st.err_detail).decode()
        kind = what.split(" ", 1)[0]
        self.errors[kind] = self.errors.get(kind, 0) + 1
        where = base + int(st.err_pos)
        unit = " of the uncompressed data" if self.source.compressed else ""
        if self.source.cut_short:
            detail += f"; {_CUT_SHORT}"
        return CaptureError(f"{self.source.name}: {what} at byte {where}{unit} ({detail})")

    def stats(self) -> dict[str, int]:
        st = self._st
        out = {
            "packets": int(st.packets),
            "bytes": int(st.bytes),
            "records": int(st.records),
            "pcapng.skipped_blocks": int(st.skipped_blocks),
        }
        for kind, n in self.errors.items():
            out[f"errors.{kind}"] = n
        return out
