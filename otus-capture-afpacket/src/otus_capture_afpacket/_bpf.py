"""tcpdump filter expressions compiled to classic BPF with libpcap (``pcap_compile``).

The program always exists, even without an expression: an empty expression compiles to
``ret #snaplen``, and the return value of the filter is what makes the kernel truncate packets
to the snap length in a TPACKET_V3 ring.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from otus_capture_afpacket._native import load

LINKTYPE_ETHERNET = 1

#: Matches IPv4 fragments other than the first (non-zero fragment offset) and IPv6 packets whose
#: first extension header is a fragment header (44). A port filter drops both: only the first
#: IPv4 fragment carries the UDP/TCP header, and libpcap does not walk IPv6 extension headers.
FRAGMENTS = "(ip[6:2] & 0x1fff != 0) or (ip6[6] == 44)"

#: The ``vlan`` keyword: compiled against a live Linux handle (see :func:`compile_filter`).
_VLAN = re.compile(r"\bvlan\b")

_lock = threading.Lock()  # pcap_compile is not reentrant in older libpcap releases


def expression(bpf: str, *, keep_fragments: bool) -> str:
    """The expression actually compiled: ``bpf``, widened to pass fragments on request."""
    bpf = bpf.strip()
    if keep_fragments and bpf:
        return f"({bpf}) or {FRAGMENTS}"
    return bpf


class BpfProgram:
    """A compiled program ready for ``SO_ATTACH_FILTER`` (owns its instruction array)."""

    def __init__(self, insns: Any, length: int, source: str) -> None:
        self.insns = insns
        self.length = length
        self.source = source

    def __len__(self) -> int:
        return self.length

    def instructions(self) -> list[tuple[int, int, int, int]]:
        """``(code, jt, jf, k)`` per instruction, as ``tcpdump -dd`` prints them."""
        return [(i.code, i.jt, i.jf, i.k) for i in self.insns[0 : self.length]]


def compile_filter(
    bpf: str, *, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 65535, device: str = ""
) -> BpfProgram:
    """Compile a tcpdump expression; ``ValueError`` carrying libpcap's message on a bad one.

    With ``device`` (an Ethernet interface, for the live socket), an expression using ``vlan``
    is compiled on an activated libpcap handle of it: only then does libpcap test the tag the
    kernel has already moved into metadata (``SKF_AD_VLAN_TAG*``), as tcpdump does; a dead
    handle tests for a tag inside the frame, which is never there, so ``vlan 100`` would match
    nothing and ``not vlan`` everything. Needs ``CAP_NET_RAW``, as the capture itself does.
    """
    ffi, lib = load()
    with _lock:
        live = bool(device) and linktype == LINKTYPE_ETHERNET and _VLAN.search(bpf) is not None
        pcap = _live_handle(ffi, lib, device, snaplen) if live else ffi.NULL
        if pcap == ffi.NULL:
            pcap = lib.pcap_open_dead(linktype, snaplen)
        if pcap == ffi.NULL:
            raise ValueError(f"libpcap cannot compile filters for link type {linktype}")
        prog = ffi.new("struct bpf_program *")
        try:
            # netmask 0xffffffff: PCAP_NETMASK_UNKNOWN, only "ip broadcast" needs the real one.
            if lib.pcap_compile(pcap, prog, bpf.encode(), 1, 0xFFFFFFFF) != 0:
                message = ffi.string(lib.pcap_geterr(pcap)).decode(errors="replace")
                raise ValueError(f"bad BPF filter {bpf!r}: {message}")
            try:
                n = prog.bf_len
                insns = ffi.new("struct bpf_insn[]", n)
                ffi.memmove(insns, prog.bf_insns, n * ffi.sizeof("struct bpf_insn"))
            finally:
                lib.pcap_freecode(prog)
        finally:
            lib.pcap_close(pcap)
    return BpfProgram(insns, n, bpf)


def _live_handle(ffi: Any, lib: Any, device: str, snaplen: int) -> Any:
    """An activated libpcap handle on ``device`` with an Ethernet link (else ``ValueError``)."""
    errbuf = ffi.new("char[]", 512)
    pcap = lib.pcap_create(device.encode(), errbuf)
    if pcap == ffi.NULL:
        message = ffi.string(errbuf).decode(errors="replace")
        raise ValueError(f"cannot compile a 'vlan' filter for {device!r}: {message}")
    lib.pcap_set_snaplen(pcap, snaplen)
    lib.pcap_set_buffer_size(pcap, 1 << 16)  # the handle never captures: its ring stays small
    rc = lib.pcap_activate(pcap)
    if rc < 0 or lib.pcap_datalink(pcap) != LINKTYPE_ETHERNET:
        message = ffi.string(lib.pcap_geterr(pcap)).decode(errors="replace")
        lib.pcap_close(pcap)
        raise ValueError(
            f"cannot compile a 'vlan' filter for {device!r} (libpcap could not open it: "
            f"{message or 'not an Ethernet link'})"
        )
    return pcap
