"""Network namespaces for live tests: a veth pair between two namespaces the test owns (root).

Namespaces and interfaces carry the pid (and a counter) in their names so that parallel test
runs never collide; they are deleted in ``finally`` even when the test fails. Traffic only ever
goes to addresses inside these namespaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["VethPair", "inside", "ip", "raw_sender", "veth_pair"]

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def ip(*args: str, netns: str | None = None) -> str:
    """Run ``ip [-n netns] args…`` (failing loudly); its standard output."""
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


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
class VethPair:
    """``ns_a``/``if_a`` (address ``ip_a``) wired to ``ns_b``/``if_b`` (address ``ip_b``)."""

    ns_a: str
    ns_b: str
    if_a: str
    if_b: str
    ip_a: str
    ip_b: str
    mac_a: bytes
    mac_b: bytes
    ifindex_a: int

    def command_a(self, *cmd: str) -> list[str]:
        """``cmd`` prefixed so that it runs inside ``ns_a`` (for ``subprocess``)."""
        return ["ip", "netns", "exec", self.ns_a, *cmd]

    def command_b(self, *cmd: str) -> list[str]:
        """``cmd`` prefixed so that it runs inside ``ns_b`` (for ``subprocess``)."""
        return ["ip", "netns", "exec", self.ns_b, *cmd]

    def run_b(self, *cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside ``ns_b`` to its end; a non-zero exit raises."""
        result: subprocess.CompletedProcess[str] = subprocess.run(
            self.command_b(*cmd), check=True, capture_output=True, text=True, **kw
        )
        return result


def _mac(netns: str, ifname: str) -> bytes:
    out = ip("-o", "link", "show", "dev", ifname, netns=netns)
    return bytes.fromhex(out.split("link/ether ")[1].split()[0].replace(":", ""))


@contextlib.contextmanager
def veth_pair(mtu: int | None = None) -> Iterator[VethPair]:
    """Two fresh namespaces joined by a veth pair (of ``mtu``, if given), both ends up, IPv6
    off; removed afterwards."""
    tag = f"{os.getpid()}x{next(_counter)}"
    ns_a, ns_b = f"otus-a-{tag}", f"otus-b-{tag}"
    if_a, if_b = f"oa{tag}"[:15], f"ob{tag}"[:15]
    subnet = 10 + os.getpid() % 200
    ip_a, ip_b = f"10.{subnet}.77.1", f"10.{subnet}.77.2"
    mtu_arg = ["mtu", str(mtu)] if mtu else []
    try:
        ip("netns", "add", ns_a)
        ip("netns", "add", ns_b)
        ip("link", "add", if_a, "netns", ns_a, *mtu_arg, "type", "veth",
           "peer", "name", if_b, "netns", ns_b, *mtu_arg)  # fmt: skip
        for ns, ifname, addr in ((ns_a, if_a, ip_a), (ns_b, if_b, ip_b)):
            # No IPv6: router solicitations and MLD reports would add packets nobody sent.
            no_v6 = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", *no_v6], check=True)
            ip("link", "set", "lo", "up", netns=ns)
            ip("addr", "add", f"{addr}/24", "dev", ifname, netns=ns)
            ip("link", "set", ifname, "up", netns=ns)
        with inside(ns_a):
            ifindex = socket.if_nametoindex(if_a)
        yield VethPair(
            ns_a, ns_b, if_a, if_b, ip_a, ip_b, _mac(ns_a, if_a), _mac(ns_b, if_b), ifindex
        )
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def raw_sender(netns: str, ifname: str) -> socket.socket:
    """An AF_PACKET socket inside ``netns`` that sends whole Ethernet frames out of ``ifname``."""
    with inside(netns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((ifname, 0))
    return s
