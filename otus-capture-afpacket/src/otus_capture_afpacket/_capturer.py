"""The AF_PACKET capturer: a TPACKET_V3 ring, one :class:`otus.RawBatch` per retired block.

Set-up order matters: a drop-all filter is attached before the socket is bound, so nothing
unfiltered (and nothing that arrives before the fanout group is joined) reaches the ring; the
real filter replaces it last.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

from otus import CaptureError, Capturer, PluginContext, RawBatch
from otus_capture_afpacket import _interfaces
from otus_capture_afpacket._bpf import compile_filter, expression
from otus_capture_afpacket._native import load
from otus_capture_afpacket._ring import Ring
from otus_capture_afpacket.options import AfPacketOptions

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_TIMESTAMP = 17
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
PACKET_MR_PROMISC = 1
SIOCGIFNAME = 0x8910  # ifindex -> name: ENODEV once the interface is gone
FANOUT_MODES = {"hash": 0, "lb": 1, "cpu": 2, "qm": 5}
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
SOF_TIMESTAMPING_RAW_HARDWARE = 1 << 6

PRIVILEGES_HINT = (
    "AF_PACKET capture needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode and hardware"
    " timestamps): run as root, or grant them to the interpreter with"
    " `sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f $(which python3))`"
)


class AfPacketCapturer(Capturer):
    """Live capture on one interface (or all) through a memory-mapped TPACKET_V3 ring."""

    def __init__(self, options: AfPacketOptions, context: PluginContext | None = None) -> None:
        self.options = options
        self.context = context or PluginContext()
        self._sock: socket.socket | None = None
        self._ring: Ring | None = None
        self._stopfd = -1
        self._stopping = False
        self._cursor = 0
        self._ifindex = 0
        self._link_down = False  # the link went down (ENETDOWN) and has not been seen gone
        self._promisc = False
        self._ffi: Any = None
        self._lib: Any = None
        self._counters: Any = None
        self._stats_lock = threading.Lock()
        self._kernel = {"packets": 0, "drops": 0, "freeze": 0}
        self._stalls = 0
        self.fanout_group: int | None = None
        self.hardware_timestamps = False

    # -- life cycle ------------------------------------------------------------------------------

    def open(self) -> None:
        opts = self.options
        ffi, _ = self._ffi, self._lib = load()
        self._counters = ffi.new("otus_afp_counters_t *")
        self._pin_cpu()
        _check_memory(opts.ring_bytes)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(PRIVILEGES_HINT, permanent=True) from None
        self._sock = sock
        try:
            self._setup(sock)
        except BaseException:
            self._teardown()
            raise

    def _setup(self, sock: socket.socket) -> None:
        opts, ffi, lib = self.options, self._ffi, self._lib
        linktype = 1
        name = opts.interface.strip()
        if not opts.any_interface:
            self._ifindex = _interfaces.index(name)
            _interfaces.require_up(sock, name)
            arphrd = _interfaces.arphrd(sock, name)
            linktype = lib.otus_afp_linktype(arphrd)
            if linktype < 0:
                raise CaptureError(
                    f"interface {name!r} has device type {arphrd}, which Otus cannot decode",
                    permanent=True,
                )
        fd = sock.fileno()
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        if opts.ignore_outgoing:
            _setsockopt(sock, PACKET_IGNORE_OUTGOING, 1, "ignore_outgoing")
        if opts.timestamps == "hardware" and not opts.any_interface:
            self.hardware_timestamps = lib.otus_afp_enable_hwtstamp(fd, name.encode()) == 0
            if self.hardware_timestamps:
                _setsockopt(sock, PACKET_TIMESTAMP, SOF_TIMESTAMPING_RAW_HARDWARE, "timestamps")
        _check(lib.otus_afp_attach_drop_all(fd), "attaching the BPF filter")

        frames = opts.block_size // opts.frame_size * opts.block_count
        req = struct.pack("7I", opts.block_size, opts.block_count, opts.frame_size, frames,
                          opts.block_timeout_ms, 0, 0)  # fmt: skip
        try:
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        except OSError as err:
            if err.errno == errno.ENOMEM:
                raise CaptureError(
                    f"the kernel could not allocate a ring of {opts.ring_bytes} bytes:"
                    " lower block_count or block_size"
                ) from None
            raise CaptureError(f"setting up the ring failed: {err.strerror}") from None
        base = lib.otus_afp_mmap(fd, opts.ring_bytes)
        if base == ffi.NULL:
            raise CaptureError(f"mapping the ring failed: {os.strerror(ffi.errno)}")
        self._ring = Ring(ffi, lib, base, opts.block_size, opts.block_count)

        rc = lib.otus_afp_bind(fd, self._ifindex)
        if rc == -errno.ENETDOWN:
            raise CaptureError(
                f"interface {name!r} is down; bring it up with: ip link set dev {name} up"
            )
        _check(rc, f"binding to interface {name!r}")
        if opts.promiscuous and self._ifindex:
            _setsockopt(sock, PACKET_ADD_MEMBERSHIP, self._mreq(), "promiscuous mode")
            self._promisc = True
        self._join_fanout(sock)

        try:
            program = compile_filter(
                expression(opts.bpf, keep_fragments=opts.bpf_keep_fragments),
                linktype=linktype,
                snaplen=opts.snaplen,
                device="lo" if opts.any_interface else name,  # lo: Ethernet, always there
            )
        except ValueError as err:
            hint = "; with interface 'any' it is compiled on lo: ip link set dev lo up"
            raise CaptureError(str(err) + (hint * opts.any_interface), permanent=True) from None
        _check(
            lib.otus_afp_attach_filter(fd, program.insns, len(program)), "attaching the BPF filter"
        )
        self._stopfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def _join_fanout(self, sock: socket.socket) -> None:
        fan = self.options.fanout
        if fan.join == "never" or (fan.join == "auto" and self.context.workers <= 1):
            return
        group = fan.group_for(self.context.task_id)
        flags = FANOUT_MODES[fan.mode] | (PACKET_FANOUT_FLAG_DEFRAG if fan.defrag else 0)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", group | flags << 16))
        except OSError as err:
            raise CaptureError(
                f"joining fanout group {group} failed ({err.strerror}): another capture in this"
                " network namespace, on any interface, uses that group with other settings;"
                " leave fanout.group_id unset (each task gets its own) or choose another"
            ) from None
        self.fanout_group = group

    def _mreq(self) -> bytes:
        return struct.pack("iHH8s", self._ifindex, PACKET_MR_PROMISC, 0, b"")

    def _pin_cpu(self) -> None:
        cpus = self.options.cpus
        if not cpus:
            return
        cpu = cpus[self.context.pipeline_id % len(cpus)]
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as err:
            raise CaptureError(f"cannot pin worker to CPU {cpu}: {err.strerror}") from None

    def stop(self) -> None:
        self._stopping = True
        if self._stopfd >= 0:
            with contextlib.suppress(OSError):  # closed concurrently: batches() has ended
                os.eventfd_write(self._stopfd, 1)

    def close(self) -> None:
        self._read_kernel_stats()
        self._teardown()

    def _teardown(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._promisc:
                with contextlib.suppress(OSError):  # interface gone: membership went with it
                    sock.setsockopt(SOL_PACKET, PACKET_DROP_MEMBERSHIP, self._mreq())
                self._promisc = False
            sock.close()
        if self._ring is not None:
            self._ring.close()  # unmaps now, or when the last outstanding batch is released
        if self._stopfd >= 0:
            os.close(self._stopfd)
            self._stopfd = -1

    # -- data ------------------------------------------------------------------------------------

    def batches(self) -> Iterator[RawBatch]:
        ring, sock = self._ring, self._sock
        if ring is None or sock is None:
            raise CaptureError("afpacket capturer: open() was not called")
        ffi, lib, counters = self._ffi, self._lib, self._counters
        fd, stopfd = sock.fileno(), self._stopfd
        block_size, block_count = ring.block_size, ring.block_count
        wait_ms = min(100, max(1, self.options.block_timeout_ms * 2))
        i = self._cursor
        while not self._stopping:
            if ring.is_held(i):
                # The consumer still holds this block from the previous lap of the ring; the
                # kernel is dropping meanwhile (counted as drops.kernel). Wait for its release.
                self._stalls += 1
                if lib.otus_afp_poll(stopfd, -1, 10) != 0:
                    break
                continue
            block = ring.block(i)
            if not lib.otus_afp_block_ready(block):
                rc = lib.otus_afp_poll(fd, stopfd, wait_ms)
                if rc == 2:
                    break
                if rc < 0:
                    raise CaptureError(f"waiting for packets failed: {os.strerror(-rc)}")
                if rc == 0:
                    if self._link_down:  # the deletion may have come after the error was read
                        self._check_gone(errno.ENETDOWN)
                    # Idle: an empty batch lets the pipeline tick (timeouts, stats) meanwhile.
                    yield RawBatch(b"", b"", 0)
                elif not lib.otus_afp_block_ready(block):
                    self._socket_error(sock)  # woken by an error, not by packets
                continue
            self._link_down = False
            n = lib.otus_afp_block_num_pkts(block)
            descs = ffi.new("otus_pkt_t[]", max(n, 1))
            count = lib.otus_afp_walk(block, block_size, descs, n, counters)
            ring.hold(i)
            self._cursor = (i + 1) % block_count
            if count == 0:
                ring.release(i)
            else:
                yield RawBatch(
                    ffi.buffer(block, block_size),
                    ffi.buffer(descs, count * ffi.sizeof("otus_pkt_t")),
                    count,
                    functools.partial(ring.release, i),
                )
            i = self._cursor

    def _socket_error(self, sock: socket.socket) -> None:
        """Read (and so clear) the socket's pending error: left set, every poll returns at once
        and the loop spins. The link went down (ENETDOWN; capture resumes when it comes back
        up), or the interface disappeared: that ends the capture, as with tcpdump."""
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            # A deleted interface goes down first (the socket's one ENETDOWN) and is
            # unregistered a moment later: if it still exists now, the idle polls look again.
            self._link_down = True
            self._check_gone(err)

    def _check_gone(self, err: int) -> None:
        sock = self._sock
        if sock is not None and self._ifindex and _interface_gone(sock, self._ifindex):
            raise CaptureError(
                f"interface {self.options.interface!r} disappeared ({os.strerror(err)}); "
                "capture stopped"
            )

    # -- statistics ------------------------------------------------------------------------------

    def _read_kernel_stats(self) -> None:
        """Add PACKET_STATISTICS to the running totals (the kernel resets them on every read)."""
        with self._stats_lock:
            sock = self._sock
            if sock is None:
                return
            try:
                raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
            except OSError:
                return
            packets, drops, freeze = struct.unpack("3I", raw)
            self._kernel["packets"] += packets
            self._kernel["drops"] += drops
            self._kernel["freeze"] += freeze

    def stats(self) -> dict[str, int]:
        self._read_kernel_stats()
        c = self._counters
        ring = self._ring
        out = {
            "packets": 0,
            "bytes": 0,
            "drops.kernel": self._kernel["drops"],
            "freeze_count": self._kernel["freeze"],
            "kernel.packets": self._kernel["packets"],
            "ring.stalls": self._stalls,
            "ring.held_blocks": ring.held if ring is not None else 0,
        }
        if c is not None:
            out.update({
                "packets": c.packets,
                "bytes": c.bytes,
                "blocks": c.blocks,
                "truncated": c.truncated,
                "timestamps.hardware": c.hw_timestamps,
                "drops.unknown_link": c.unknown_link,
                "loopback_outgoing": c.loopback_outgoing,
            })  # fmt: skip
        return out


def _check(rc: int, doing: str) -> None:
    if rc in (-errno.EPERM, -errno.EACCES):
        raise CaptureError(f"{doing}: permission denied. {PRIVILEGES_HINT}", permanent=True)
    if rc < 0:
        raise CaptureError(f"{doing} failed: {os.strerror(-rc)}")


def _setsockopt(sock: socket.socket, option: int, value: int | bytes, what: str) -> None:
    try:
        sock.setsockopt(SOL_PACKET, option, value)
    except OSError as err:
        _check(-(err.errno or errno.EINVAL), f"enabling {what}")


def _check_memory(ring_bytes: int) -> None:
    """Refuse a ring larger than the memory the system has available right now."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return
    if ring_bytes > available:
        raise CaptureError(
            f"a ring of {ring_bytes} bytes does not fit in the {available} bytes of memory"
            " available: lower block_count or block_size"
        )


def _interface_gone(sock: socket.socket, ifindex: int) -> bool:
    """True when no interface has ``ifindex`` any more, in the socket's own network namespace
    (the capture may run in another one than the thread asking)."""
    request = struct.pack("16si20x", b"", ifindex)  # struct ifreq: name, then ifr_ifindex
    try:
        fcntl.ioctl(sock.fileno(), SIOCGIFNAME, request)
    except OSError as exc:
        return exc.errno == errno.ENODEV
    return False
