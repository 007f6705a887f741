"""Otus parser: SIP over UDP and TCP with dialogs, SDP and media flows."""
