"""Helpers and contract suites for testing Otus plugins (public, for plugin authors too).

``need``/``need_tool``/``need_root`` declare what a test needs; the ``…Contract`` classes are
test suites to subclass; the builders make datagrams, frames, raw batches and records.
"""

from __future__ import annotations

import pytest

# The contract suites assert inside this installed package: let pytest rewrite those asserts so
# a failing contract shows the values involved. Must run before the module is imported.
pytest.register_assert_rewrite("otus.testing.contracts")

from otus.testing.contracts import (  # noqa: E402
    LABEL_NAME,
    LIVENESS_TIMEOUT,
    CapturerContract,
    ParserContract,
    ProcessorContract,
    ReporterContract,
    call_bounded,
)
from otus.testing.packets import (  # noqa: E402
    DEFAULT_TS_NS,
    IPPROTO_TCP,
    IPPROTO_UDP,
    ethernet_udp_frame,
    ip_udp_packet,
    make_record,
    raw_batch,
    udp_datagram,
    write_pcap,
)
from otus.testing.requirements import in_ci, need, need_root, need_tool  # noqa: E402

__all__ = [
    "DEFAULT_TS_NS",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "LABEL_NAME",
    "LIVENESS_TIMEOUT",
    "CapturerContract",
    "ParserContract",
    "ProcessorContract",
    "ReporterContract",
    "call_bounded",
    "ethernet_udp_frame",
    "in_ci",
    "ip_udp_packet",
    "make_record",
    "need",
    "need_root",
    "need_tool",
    "raw_batch",
    "udp_datagram",
    "write_pcap",
]
