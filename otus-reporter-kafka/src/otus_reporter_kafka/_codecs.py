"""How each codec compresses a records section: whole, or part by part into one frame.

By default lz4 runs in its fast mode (aiokafka uses level 9: ~12x slower for ~35 % smaller
batches), as a frame of independent blocks without content checksum (KIP-57); zstd at level 1
(Kafka's default is 3: on SIP records 1 compresses as well, ~31x, for ~25 % less CPU), gzip
at 9; ``compression_level`` sets another (the option's ranges). The ``lz4`` and
``zstandard`` packages are preferred (~15 % less CPU than cramjam's encoders on these
sections); lz4 also compresses part by part (:attr:`Codec.stream`); zstd compresses whole
sections (its stream API copies each part into its window first: ~0.2 µs a record more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.codec import gzip_encode, snappy_encode

__all__ = ["CODECS", "ZSTD_LEVEL", "Codec", "StreamCompressor", "codec"]

#: Attribute bits of each codec (the timestamp type bit stays 0: CreateTime).
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

#: zstd's default level here. Kafka's is 3; on the reporter's SIP records (JSON values, labels
#: twice, base64 payloads) level 1 gives batches as small (31.9x against 30.5x on the bench's
#: records) for ~25 % less compression CPU.
ZSTD_LEVEL = 1


class StreamCompressor(Protocol):
    """One frame made of several parts: ``compress`` each, then ``flush`` (the frame's end)."""

    def compress(self, data: Any) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class Codec:
    """A codec's compression of a records section (any bytes-like object, a view of the
    sender's scratch too): ``whole`` in one call; ``stream`` (when not ``None``) makes a
    compressor that takes the section part by part, so each part is compressed while it is
    still in the cache it was just written to."""

    name: str
    attribute: int
    whole: Callable[[Any], bytes]
    stream: Callable[[], StreamCompressor] | None = None


def codec(name: str, level: int | None = None) -> Codec | None:
    """The compression of ``name`` at ``level`` (``None``: the codec's default; the option
    checks the ranges); ``None`` for "none"; ``ValueError`` for an unknown codec."""
    if name == "none":
        return None
    if name == "gzip":
        gzip_level = 9 if level is None else level
        return Codec(name, CODECS[name], lambda data: bytes(gzip_encode(data, gzip_level)))
    if name == "snappy":
        return Codec(name, CODECS[name], lambda data: bytes(snappy_encode(data)))
    if name == "lz4":
        return _lz4(0 if level is None else level)
    if name == "zstd":
        return _zstd(ZSTD_LEVEL if level is None else level)
    raise ValueError(f"unknown compression {name!r}")


def _lz4(level: int) -> Codec:
    """lz4 frames of independent blocks of up to 1 MiB with ``lz4`` (~1.5x smaller than in
    64 KiB blocks at the same speed, so less goes through the socket; Kafka's readers take all
    four frame block sizes, 64 KiB to 4 MiB); cramjam's 64 KiB blocks without it."""
    try:
        import lz4.frame  # type: ignore[import-untyped]
    except ImportError:
        import cramjam

        def frame(data: Any) -> bytes:
            out = cramjam.lz4.Compressor(
                level=max(level, 1), content_checksum=False, block_linked=False
            )  # its fast mode is 1: no acceleration
            out.compress(bytes(data))  # it takes bytes only, not a view of the scratch
            return bytes(out.finish())

        return Codec("lz4", CODECS["lz4"], frame)

    compress = lz4.frame.compress
    block_size = lz4.frame.BLOCKSIZE_MAX1MB

    def whole(data: Any) -> bytes:
        out: bytes = compress(
            data, compression_level=level, block_size=block_size, block_linked=False,
            content_checksum=False, store_size=False,
        )  # fmt: skip
        return out

    return Codec("lz4", CODECS["lz4"], whole, lambda: _Lz4Frame(level))


class _Lz4Frame:
    """One lz4 frame (the same header as :func:`_lz4`'s ``whole``), compressed part by part:
    each part becomes its own blocks (``auto_flush``), so nothing is buffered in between."""

    def __init__(self, level: int) -> None:
        import lz4.frame

        self._frame = lz4.frame.LZ4FrameCompressor(
            block_size=lz4.frame.BLOCKSIZE_MAX1MB, block_linked=False, compression_level=level,
            content_checksum=False, block_checksum=False, auto_flush=True,
        )  # fmt: skip
        self._head: bytes = self._frame.begin()

    def compress(self, data: Any) -> bytes:
        out: bytes = self._frame.compress(data)
        if self._head:
            out, self._head = self._head + out, b""
        return out

    def flush(self) -> bytes:
        end: bytes = self._frame.flush()
        return self._head + end


def _zstd(level: int) -> Codec:
    """zstd frames of whole sections. One compressor object: only the sender thread uses
    it. No :attr:`Codec.stream`: ``compressobj`` copies each part into zstd's window before
    compressing it, one-shot ``compress`` reads the section in place (interleaved A/B on the
    bench's records: ~5.3 against ~5.6 µs a record for the whole reporter)."""
    try:
        import zstandard
    except ImportError:
        import cramjam

        return Codec(
            "zstd", CODECS["zstd"], lambda data: bytes(cramjam.zstd.compress(data, level=level))
        )
    compressor = zstandard.ZstdCompressor(level=level)
    return Codec("zstd", CODECS["zstd"], compressor.compress)
