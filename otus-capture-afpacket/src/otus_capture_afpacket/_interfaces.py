"""Interface lookups in the caller's network namespace (ioctl, not sysfs: sysfs shows the
namespace it was mounted in, which is wrong after ``setns``)."""

from __future__ import annotations

import fcntl
import socket
import struct

from otus import CaptureError

SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_PROMISC = 0x100
ANY = ("any", "all", "")


def names() -> list[str]:
    """Names of the interfaces that exist, sorted."""
    return sorted(name for _, name in socket.if_nameindex())


def index(name: str) -> int:
    """ifindex of ``name``; a :class:`CaptureError` listing the interfaces that exist if none."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise CaptureError(
            f"interface {name!r} does not exist; interfaces here: {', '.join(names())}"
            " (or 'any' for all of them)",
            permanent=True,
        ) from None


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    req = struct.pack("16s24x", name.encode())
    try:
        return fcntl.ioctl(sock.fileno(), request, req)
    except OSError as err:
        raise CaptureError(f"interface {name!r}: {err.strerror}") from None


def flags(sock: socket.socket, name: str) -> int:
    """``IFF_*`` flags of ``name``."""
    return int(struct.unpack_from("H", _ifreq(sock, SIOCGIFFLAGS, name), 16)[0])


def arphrd(sock: socket.socket, name: str) -> int:
    """The ``ARPHRD_*`` device type of ``name`` (1 Ethernet, 772 loopback, 65534 none...)."""
    return int(struct.unpack_from("H", _ifreq(sock, SIOCGIFHWADDR, name), 16)[0])


def require_up(sock: socket.socket, name: str) -> None:
    """Raise a :class:`CaptureError` saying how to bring ``name`` up when it is down."""
    if not flags(sock, name) & IFF_UP:
        raise CaptureError(
            f"interface {name!r} is down; bring it up with: ip link set dev {name} up"
        )
