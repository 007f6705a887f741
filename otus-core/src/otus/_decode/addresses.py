"""IP address text for decoded entries, cached: a capture sees few distinct addresses."""

from __future__ import annotations

import socket

_MAX_CACHE = 65536


class AddressCache:
    """Maps raw address bytes (4 for IPv4, 16 for IPv6) to their text form."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[bytes, str] = {}

    def text(self, raw16: bytes, version: int) -> str:
        """Text of the address in ``raw16`` (IPv4 in the first four bytes); ``""`` without IP."""
        key = raw16[:4] if version == 4 else raw16
        try:
            return self._cache[key]
        except KeyError:
            pass
        if version == 4:
            s = socket.inet_ntop(socket.AF_INET, key)
        elif version == 6:
            s = socket.inet_ntop(socket.AF_INET6, key)
        else:
            return ""
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[key] = s
        return s
