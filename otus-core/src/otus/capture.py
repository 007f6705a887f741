"""The capturer interface and the raw batch every capturer yields (design §3, stage 1).

A raw batch is one buffer plus a packed array of fixed-size packet descriptors. The layout of a
descriptor is the C struct ``otus_pkt_t`` in ``otus/_native/otus_batch.h``; :data:`PACKET_DESC`
is the same layout for Python code. Capturers written in C fill the descriptors directly (the
AF_PACKET capturer walks a ring block); capturers in Python use :class:`RawBatchBuilder`.
"""

from __future__ import annotations

import abc
import struct
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "PACKET_DESC",
    "PKT_FLAG_VLAN",
    "Capturer",
    "RawBatch",
    "RawBatchBuilder",
]

# Link types as in the pcap LINKTYPE_ registry (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte host-order address family
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, version from the first nibble
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

#: Descriptor flag: ``vlan_tci``/``vlan_tpid`` hold a tag delivered out of band (stripped by the
#: kernel from the frame); the decoder treats it as the outermost tag.
PKT_FLAG_VLAN = 0x0001

#: ``otus_pkt_t``: ts_ns (int64), offset, caplen, wirelen, ifindex (uint32), linktype, vlan_tci,
#: vlan_tpid, flags (uint16). 32 bytes, native byte order.
PACKET_DESC = struct.Struct("=qIIIIHHHH")


class RawBatch:
    """Packets as captured: ``data`` holds the bytes, ``descs`` the ``count`` descriptors.

    ``data`` may point into memory the capturer owns (a ring block); the pipeline calls
    :meth:`release` once nothing refers to it any more, and never touches it afterwards.
    """

    __slots__ = ("_release", "count", "data", "descs")

    def __init__(
        self,
        data: Any,
        descs: Any,
        count: int,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.data = data
        self.descs = descs
        self.count = count
        self._release = release

    def release(self) -> None:
        """Give the buffer back to the capturer. Idempotent."""
        cb, self._release = self._release, None
        if cb is not None:
            cb()


class RawBatchBuilder:
    """Builds a :class:`RawBatch` from Python, one frame at a time (not for hot paths in C)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._descs = bytearray()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        frame: bytes | bytearray | memoryview,
        *,
        ts_ns: int,
        linktype: int = LINKTYPE_ETHERNET,
        wirelen: int | None = None,
        ifindex: int = 0,
        vlan_tci: int | None = None,
        vlan_tpid: int = 0x8100,
    ) -> None:
        offset = len(self._data)
        self._data += frame
        flags = 0
        tci = 0
        if vlan_tci is not None:
            flags |= PKT_FLAG_VLAN
            tci = vlan_tci
        self._descs += PACKET_DESC.pack(
            ts_ns,
            offset,
            len(frame),
            len(frame) if wirelen is None else wirelen,
            ifindex,
            linktype,
            tci,
            vlan_tpid if vlan_tci is not None else 0,
            flags,
        )
        self._count += 1

    def build(self) -> RawBatch:
        batch = RawBatch(bytes(self._data), bytes(self._descs), self._count)
        self._data = bytearray()
        self._descs = bytearray()
        self._count = 0
        return batch


class Capturer(abc.ABC):
    """A source of raw batches: a file, a live interface, a socket.

    Life cycle: ``open()`` once, iterate ``batches()`` until it ends (the file is exhausted) or
    ``stop()`` is called (from another thread or a signal handler), then ``close()``.
    """

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the source; raise :class:`otus.errors.CaptureError` saying what to do."""

    @abc.abstractmethod
    def batches(self) -> Iterator[RawBatch]:
        """Yield batches until the source ends or :meth:`stop` is called."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Ask :meth:`batches` to end soon. Safe to call from any thread or a signal handler."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the source. Called once, after the last batch has been released."""

    @property
    def pausable(self) -> bool:
        """True when the source loses nothing by waiting (a file read as fast as it goes):
        a reporter that falls behind then holds the run loop, and with it the source, until it
        has room, instead of dropping. A live source (an interface ring) cannot wait."""
        return False

    def stats(self) -> dict[str, int]:
        """Plain counters: ``packets``, ``bytes``, ``drops.kernel``, ``drops.<reason>``…"""
        return {}

    def progress(self) -> tuple[int, int | None]:
        """``(done, total)`` in bytes for a progress bar; ``total`` is ``None`` when unknown."""
        return (0, None)
