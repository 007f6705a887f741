"""IP address text for decoded entries, cached: a capture sees few distinct addresses."""

from __future__ import annotations

import socket

_MAX_CACHE = 65536


class AddressCache:
    """Maps the raw 16-byte address field of an entry to its text form, one dict per version.

    ``v4``/``v6`` are the dicts themselves so hot loops can look up without a method call.
    """

    __slots__ = ("v4", "v6")

    def __init__(self) -> None:
        self.v4: dict[bytes, str] = {}
        self.v6: dict[bytes, str] = {}

    def text(self, raw16: bytes, version: int) -> str:
        """Text of the address in ``raw16`` (IPv4 in the first four bytes); ``""`` without IP."""
        if version == 4:
            cache = self.v4
            s = cache.get(raw16)
            if s is None:
                s = socket.inet_ntop(socket.AF_INET, raw16[:4])
        elif version == 6:
            cache = self.v6
            s = cache.get(raw16)
            if s is None:
                s = socket.inet_ntop(socket.AF_INET6, raw16)
        else:
            return ""
        if len(cache) >= _MAX_CACHE:
            cache.clear()
        cache[raw16] = s
        return s
