"""Otus parser: SIP over UDP and TCP with dialogs, SDP and media flows.

``SipParser`` is the parser, ``SipOptions`` its options, ``MediaFlowRegistry`` the media flows
it shares with other parsers in ``context.shared["media_flows"]``.
"""

from __future__ import annotations

from otus_parser_sip._options import SipOptions
from otus_parser_sip.media import MediaFlow, MediaFlowRegistry

__all__ = ["MediaFlow", "MediaFlowRegistry", "SipOptions"]
