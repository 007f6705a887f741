"""Two network namespaces joined by a veth pair, for the end-to-end test's live calls.

Names carry the pid (and a counter) so that parallel runs never collide; both namespaces are
deleted in ``finally`` even when the test fails. Traffic only goes to addresses inside them.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block with the calling thread inside ``netns``: its sockets, the threads it
    starts and the processes it spawns live there (a Unix socket path still works across)."""
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            yield
        finally:
            if _libc.setns(back, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(target)
        os.close(back)


@dataclass(frozen=True)
class Link:
    """``ns_a``/``if_a`` (address ``ip_a``) wired to ``ns_b``/``if_b`` (address ``ip_b``)."""

    ns_a: str
    ns_b: str
    if_a: str
    if_b: str
    ip_a: str
    ip_b: str

    def exec_a(self) -> list[str]:
        """Command prefix that runs a program inside ``ns_a``."""
        return ["ip", "netns", "exec", self.ns_a]

    def exec_b(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns_b]


@contextlib.contextmanager
def veth_link(mtu: int) -> Iterator[Link]:
    """Two fresh namespaces joined by a veth pair with ``mtu``, both ends up, IPv6 off."""
    tag = f"{os.getpid()}x{next(_counter)}"
    ns_a, ns_b = f"otus-e2e-a-{tag}", f"otus-e2e-b-{tag}"
    if_a, if_b = f"ea{tag}"[:15], f"eb{tag}"[:15]
    subnet = 10 + os.getpid() % 200
    link = Link(ns_a, ns_b, if_a, if_b, f"10.{subnet}.99.1", f"10.{subnet}.99.2")
    try:
        ip("netns", "add", ns_a)
        ip("netns", "add", ns_b)
        ip("link", "add", if_a, "netns", ns_a, "mtu", str(mtu), "type", "veth",
           "peer", "name", if_b, "netns", ns_b, "mtu", str(mtu))  # fmt: skip
        for ns, ifname, addr in ((ns_a, if_a, link.ip_a), (ns_b, if_b, link.ip_b)):
            # No IPv6: router solicitations and MLD reports would add packets nobody sent.
            no_v6 = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", *no_v6], check=True)
            ip("link", "set", "lo", "up", netns=ns)
            ip("addr", "add", f"{addr}/24", "dev", ifname, netns=ns)
            ip("link", "set", ifname, "up", netns=ns)
        yield link
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
