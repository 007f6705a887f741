"""IP address text for decoded entries, cached: a capture sees few distinct addresses."""

from __future__ import annotations

import socket

_MAX_CACHE = 65536


def address_text(raw16: bytes, version: int) -> str:
    """Text of the address in ``raw16`` (IPv4 in the first four bytes); ``""`` without IP.
    Also the formatter behind the C datagram builder's own cache (``_native/pyapi``)."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, raw16[:4])
    if version == 6:
        return socket.inet_ntop(socket.AF_INET6, raw16)
    return ""


class AddressCache:
    """Maps the raw 16-byte address field of an entry to its text form, one dict per version
    (TCP segments; datagrams are built in C with a cache of its own)."""

    __slots__ = ("v4", "v6")

    def __init__(self) -> None:
        self.v4: dict[bytes, str] = {}
        self.v6: dict[bytes, str] = {}

    def text(self, raw16: bytes, version: int) -> str:
        """:func:`address_text`, cached."""
        if version == 4:
            cache = self.v4
        elif version == 6:
            cache = self.v6
        else:
            return ""
        s = cache.get(raw16)
        if s is None:
            s = address_text(raw16, version)
            if len(cache) >= _MAX_CACHE:
                cache.clear()
            cache[raw16] = s
        return s
