"""Registers the built-in ``pcap`` capturer through the same plugin path as third-party ones."""

from __future__ import annotations

from otus._capture_pcap.options import PcapOptions
from otus.capture import Capturer
from otus.context import PluginContext
from otus.hookspecs import hookimpl
from otus.specs import CapturerSpec


def _factory(options: PcapOptions, context: PluginContext) -> Capturer:
    # imported here so that listing plugins never loads the cffi extension
    from otus._capture_pcap.capturer import PcapCapturer

    return PcapCapturer(options)


@hookimpl
def otus_capturers() -> list[CapturerSpec]:
    return [
        CapturerSpec(
            name="pcap",
            factory=_factory,
            options_model=PcapOptions,
            summary="Read pcap/pcapng files (also gzip, stdin), optionally paced and looped",
            max_workers=1,  # each worker would read the whole file and report it again
        )
    ]
