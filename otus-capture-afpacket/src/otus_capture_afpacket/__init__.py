"""Otus capturer: AF_PACKET TPACKET_V3 ring with fanout workers and BPF.

The plugin is registered by :mod:`otus_capture_afpacket.plugin`; the capturer itself lives in a
private module so that listing plugins does not load the C extension.
"""

from otus_capture_afpacket.options import AfPacketOptions, FanoutOptions

__all__ = ["AfPacketOptions", "FanoutOptions"]
