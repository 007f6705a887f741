"""IP address text for decoded entries (the C datagram builder caches what it formats)."""

from __future__ import annotations

import socket


def address_text(raw16: bytes, version: int) -> str:
    """Text of the address in ``raw16`` (IPv4 in the first four bytes); ``""`` without IP.
    The formatter behind the C builder's cache (``_native/pyapi``) and ``DecodedBatch.row``."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, raw16[:4])
    if version == 6:
        return socket.inet_ntop(socket.AF_INET6, raw16)
    return ""
