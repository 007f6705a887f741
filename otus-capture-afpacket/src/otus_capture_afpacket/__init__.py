"""Otus capturer: AF_PACKET TPACKET_V3 ring with fanout workers and BPF."""
