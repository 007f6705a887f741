"""Ring ownership: batches keep their block mapped until released; nothing leaks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
from afp_helpers import udp_frame

from otus import CaptureError
from otus.testing import need_tool
from otus.testing.netns import VethPair, inside, raw_sender
from otus_capture_afpacket._capturer import PRIVILEGES_HINT, AfPacketCapturer
from otus_capture_afpacket.options import AfPacketOptions

pytestmark = pytest.mark.root


def ring_mapped(cap: AfPacketCapturer) -> bool:
    """Whether the ring's address range appears in /proc/self/maps."""
    assert cap._ring is not None
    start = int(cap._ffi.cast("uintptr_t", cap._ring.base))
    with open("/proc/self/maps") as f:
        return any(int(line.split("-", 1)[0], 16) == start for line in f)


def open_small(veth: VethPair, **fields: object) -> AfPacketCapturer:
    opts = {"interface": veth.if_a, "block_size": 65536, "block_count": 4, "snaplen": 2048,
            "block_timeout_ms": 2, **fields}  # fmt: skip
    cap = AfPacketCapturer(AfPacketOptions(**opts))  # type: ignore[arg-type]
    with inside(veth.ns_a):
        cap.open()
    return cap


def test_close_waits_for_outstanding_batches_before_unmapping(veth: VethPair) -> None:
    cap = open_small(veth)
    frame = udp_frame(veth.ip_b, veth.ip_a, 1, 2, b"held", src_mac=veth.mac_b)
    with raw_sender(veth.ns_b, veth.if_b) as s:
        s.send(frame)
    batch = next(b for b in cap.batches() if b.count)  # skip idle tick batches
    view = memoryview(batch.data)
    cap.close()
    # Closed, but the batch still points into the ring: the mapping must stay.
    assert ring_mapped(cap)
    assert frame in bytes(view)
    del view
    batch.release()
    assert not ring_mapped(cap)
    batch.release()  # idempotent


@pytest.mark.slow
def test_a_thousand_open_close_cycles_leak_nothing(veth: VethPair) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def sockets() -> int:
        links = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the fd listdir itself used
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
        return sum(link.startswith("socket:") for link in links)

    def rings() -> int:
        """Ring mappings show as ``socket:[inode]`` in /proc/self/maps."""
        with open("/proc/self/maps") as f:
            return sum("socket:[" in line for line in f)

    def cycles(n: int) -> None:
        for _ in range(n):
            cap = open_small(veth, bpf="udp", promiscuous=True)
            cap.close()

    def in_threads(total: int) -> None:
        # Closing an AF_PACKET socket waits for an RCU grace period (synchronize_net); threads
        # let those waits overlap so a thousand cycles take seconds, not most of a minute.
        with ThreadPoolExecutor(20) as pool:
            for done in [pool.submit(cycles, total // 20) for _ in range(20)]:
                done.result()

    before = (fds(), sockets(), rings())
    in_threads(1000)
    assert (fds(), sockets(), rings()) == before


def test_unprivileged_user_is_told_which_capabilities_to_grant() -> None:
    setpriv = need_tool("setpriv")
    code = textwrap.dedent("""
        from otus import CaptureError
        from otus_capture_afpacket._capturer import AfPacketCapturer
        from otus_capture_afpacket.options import AfPacketOptions
        try:
            AfPacketCapturer(AfPacketOptions(interface="lo")).open()
        except CaptureError as err:
            print(err)
    """)
    out = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == PRIVILEGES_HINT
    assert "CAP_NET_RAW" in PRIVILEGES_HINT
    assert "setcap cap_net_raw,cap_net_admin+eip" in PRIVILEGES_HINT


def test_batches_before_open_is_an_error() -> None:
    with pytest.raises(CaptureError, match="open"):
        next(iter(AfPacketCapturer(AfPacketOptions()).batches()))
