"""Registers the ``afpacket`` capturer. Importing this module never loads the C extension."""

from __future__ import annotations

from collections.abc import Iterable

import otus
from otus import Capturer, CapturerSpec, PluginContext
from otus_capture_afpacket.options import AfPacketOptions


def _make(options: AfPacketOptions, context: PluginContext) -> Capturer:
    from otus_capture_afpacket._capturer import AfPacketCapturer

    return AfPacketCapturer(options, context)


@otus.hookimpl
def otus_capturers() -> Iterable[CapturerSpec]:
    return [
        CapturerSpec(
            name="afpacket",
            factory=_make,
            options_model=AfPacketOptions,
            summary="Live capture: AF_PACKET TPACKET_V3 ring, BPF, fanout workers",
        )
    ]
