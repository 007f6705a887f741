"""Options of the ``afpacket`` capturer, validated together when a task is created.

The ring geometry is checked as a whole (the Go original shipped defaults whose snap length did
not fit its block, so capture failed out of the box): a block must be a multiple of the page size
and of the frame size, the largest packet (snap length plus the kernel's per-packet header) must
fit in one block, and the ring must stay under ``max_ring_memory`` per worker.
"""

from __future__ import annotations

import os
import zlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from otus import ByteSize

__all__ = ["AfPacketOptions", "FanoutOptions", "FRAME_OVERHEAD", "MiB"]

MiB = 1024 * 1024
#: Room the kernel needs around a packet inside a block: the block descriptor (48 bytes), the
#: tpacket3 header with sockaddr_ll and alignment (up to ~100 bytes), rounded up generously.
FRAME_OVERHEAD = 256
TPACKET_ALIGNMENT = 16


class FanoutOptions(BaseModel):
    """How worker processes of one task share the interface (``PACKET_FANOUT``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: hash: by flow, symmetric (both directions on one worker); lb: round robin;
    #: cpu: by the CPU that received the packet; qm: by the NIC's receive queue.
    mode: Literal["hash", "lb", "cpu", "qm"] = "hash"
    #: Fanout group id (0-65535), unique per network namespace (across its interfaces) and
    #: task; default: derived from the task id.
    group_id: int | None = Field(default=None, ge=0, le=0xFFFF)
    #: PACKET_FANOUT_FLAG_DEFRAG: the kernel reassembles IPv4 fragments before spreading them,
    #: so all fragments of a datagram reach one worker and a port filter sees the whole datagram.
    defrag: bool = True
    #: auto: join a group when the task has more than one worker; always: also with one worker
    #: (to get kernel defragmentation); never: no group (each worker would see every packet).
    join: Literal["auto", "always", "never"] = "auto"

    def group_for(self, task_id: str) -> int:
        """The group id: configured, or a stable 16-bit hash of the task id."""
        if self.group_id is not None:
            return self.group_id
        return zlib.crc32(f"otus:{task_id}".encode()) & 0xFFFF


class AfPacketOptions(BaseModel):
    """Live capture from a network interface through a TPACKET_V3 memory-mapped ring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Interface name, or "any" for all interfaces (each packet then carries its ifindex).
    interface: str = "any"
    #: Capture filter in tcpdump syntax (pcap-filter(7)); empty: capture everything.
    bpf: str = ""
    #: Widen ``bpf`` so that IP fragments pass too: ``(bpf) or <ipv4/ipv6 fragment>``.
    bpf_keep_fragments: bool = False
    #: Bytes kept of each packet; longer packets are truncated (wire length is still reported).
    snaplen: int = Field(default=65535, ge=64, le=262144)
    #: Receive frames addressed to other hosts (PACKET_MR_PROMISC, released on close).
    promiscuous: bool = False
    #: Size of one ring block; one block becomes one batch.
    block_size: ByteSize = 1 * MiB
    #: Number of blocks in the ring (ring memory = block_size * block_count).
    block_count: int = Field(default=32, ge=2, le=65536)
    #: TPACKET_V3 frame size: only used to validate the geometry (packets are variable size).
    frame_size: ByteSize = 2048
    #: A block is handed over when full or after this many milliseconds.
    block_timeout_ms: int = Field(default=10, ge=1, le=60_000)
    #: Upper limit of ring memory per worker process.
    max_ring_memory: ByteSize = 64 * MiB
    fanout: FanoutOptions = FanoutOptions()
    #: Do not capture packets this host sends (PACKET_IGNORE_OUTGOING).
    ignore_outgoing: bool = False
    #: software: kernel receive time; hardware: NIC time where the driver supports it
    #: (falls back to software time per packet otherwise; see stats ``timestamps.hardware``).
    timestamps: Literal["software", "hardware"] = "software"
    #: Pin worker ``pipeline_id`` to ``cpus[pipeline_id % len(cpus)]``; empty: no pinning.
    cpus: list[int] = Field(default_factory=list)

    @property
    def ring_bytes(self) -> int:
        return self.block_size * self.block_count

    @property
    def any_interface(self) -> bool:
        return self.interface.strip().lower() in ("any", "all", "")

    @model_validator(mode="after")
    def _check(self) -> AfPacketOptions:
        page = os.sysconf("SC_PAGE_SIZE")
        if self.block_size <= 0 or self.block_size % page:
            raise ValueError(
                f"block_size {self.block_size} must be a multiple of the page size ({page})"
            )
        if self.block_size >= 1 << 31:  # tp_block_size is checked as an int by the kernel
            raise ValueError(
                f"block_size {_size(self.block_size)}: the kernel takes blocks below 2 GiB;"
                " use more blocks (block_count) instead"
            )
        if self.frame_size < 128 or self.frame_size % TPACKET_ALIGNMENT:
            raise ValueError(
                f"frame_size {self.frame_size} must be at least 128 and a multiple of 16"
            )
        if self.block_size % self.frame_size:
            raise ValueError(
                f"block_size {self.block_size} must be a multiple of frame_size {self.frame_size}"
            )
        per_block = self.block_size // self.frame_size
        if per_block * self.block_count >= 1 << 32:
            raise ValueError(
                f"{self.block_count} blocks of {per_block} frames ({_size(self.block_size)} /"
                f" frame_size {self.frame_size}): the kernel counts frames in 32 bits;"
                " raise frame_size or lower block_count"
            )
        if self.snaplen + FRAME_OVERHEAD > self.block_size:
            raise ValueError(
                f"snaplen {self.snaplen} does not fit in a block of {self.block_size} bytes"
                f" (each packet needs snaplen + {FRAME_OVERHEAD} bytes of header room):"
                f" raise block_size to at least {_round_up(self.snaplen + FRAME_OVERHEAD, page)}"
                " or lower snaplen"
            )
        if self.ring_bytes > self.max_ring_memory:
            raise ValueError(
                f"ring of {_size(self.ring_bytes)} (block_size {_size(self.block_size)} x"
                f" block_count {self.block_count}) exceeds max_ring_memory"
                f" {_size(self.max_ring_memory)} per worker: lower block_count or block_size,"
                " or raise max_ring_memory"
            )
        if self.promiscuous and self.any_interface:
            raise ValueError(
                "promiscuous needs a named interface; with 'any' no interface can be put in"
                " promiscuous mode (the kernel has no such mode for all of them): set"
                " interface, e.g. the mirror port"
            )
        if len(set(self.cpus)) != len(self.cpus) or any(c < 0 for c in self.cpus):
            raise ValueError(f"cpus {self.cpus} must be distinct CPU numbers >= 0")
        if self.bpf.strip() or self.bpf_keep_fragments:
            from otus_capture_afpacket._bpf import compile_filter, expression

            compile_filter(expression(self.bpf, keep_fragments=self.bpf_keep_fragments),
                           snaplen=self.snaplen)  # fmt: skip
        return self


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _size(n: int) -> str:
    if n % (1024 * MiB) == 0:
        return f"{n // (1024 * MiB)} GiB"
    if n % MiB == 0:
        return f"{n // MiB} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"
