"""Registration of the ``sip`` parser and its metrics (entry point ``otus.plugins: sip``);
imports stay light."""

from __future__ import annotations

from collections.abc import Iterable

from otus import MetricSpec, Parser, ParserSpec, PluginContext, hookimpl
from otus_parser_sip import metrics
from otus_parser_sip._options import SipOptions

__all__ = ["otus_metrics", "otus_parsers"]


def _make(options: SipOptions, context: PluginContext) -> Parser:
    from otus_parser_sip.parser import SipParser

    return SipParser(options, context)


@hookimpl
def otus_parsers() -> Iterable[ParserSpec]:
    return [
        ParserSpec(
            name="sip",
            factory=_make,
            options_model=SipOptions,
            summary="SIP over UDP/TCP/WebSocket: headers, SDP, dialogs, media flows",
        )
    ]


@hookimpl
def otus_metrics() -> Iterable[MetricSpec]:
    return list(metrics.METRICS)
