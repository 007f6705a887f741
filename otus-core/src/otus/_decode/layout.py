"""Reading ``otus_dec_t`` entries from Python: one :class:`struct.Struct` built from cffi offsets.

``DecodedBatch.row`` (tests, debugging) reads entries this way; the parsers' datagrams and
segments are built in C (``_native/pyapi/build.c``) from the same header. The struct is derived
from the compiled layout (``ffi.offsetof``) so Python and C cannot drift apart.
"""

from __future__ import annotations

import struct
from typing import Any

#: Fields of ``otus_dec_t`` in the order :func:`entry_struct` unpacks them, with struct codes.
FIELDS: tuple[tuple[str, str], ...] = (
    ("ts_ns", "q"),
    ("pkt", "I"),
    ("ifindex", "I"),
    ("src_ip", "16s"),
    ("dst_ip", "16s"),
    ("outer_src", "16s"),
    ("outer_dst", "16s"),
    ("l3_offset", "I"),
    ("payload_offset", "I"),
    ("payload_len", "I"),
    ("tcp_seq", "I"),
    ("tcp_ack", "I"),
    ("frag_id", "I"),
    ("tunnel_id", "I"),
    ("match", "I"),
    ("src_port", "H"),
    ("dst_port", "H"),
    ("vlan_outer", "H"),
    ("vlan_inner", "H"),
    ("frag_offset", "H"),
    ("status", "H"),
    ("cls", "h"),
    ("ip_version", "B"),
    ("ip_proto", "B"),
    ("outer_version", "B"),
    ("tunnel", "B"),
    ("tunnel_depth", "B"),
    ("vlan_count", "B"),
    ("frag", "B"),
    ("frag_more", "B"),
    ("tcp_flags", "B"),
    ("icmp_type", "B"),
    ("icmp_code", "B"),
    ("buf", "B"),
)
NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)
INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}


def entry_struct(ffi: Any) -> struct.Struct:
    """A ``Struct`` unpacking one ``otus_dec_t`` into the values of :data:`FIELDS`."""
    fmt = "="
    pos = 0
    for name, code in FIELDS:
        off = ffi.offsetof("otus_dec_t", name)
        if off < pos:
            raise RuntimeError(f"otus_dec_t.{name}: fields out of order in FIELDS")
        fmt += "x" * (off - pos) + code
        pos = off + struct.calcsize("=" + code)
    fmt += "x" * (ffi.sizeof("otus_dec_t") - pos)
    return struct.Struct(fmt)
