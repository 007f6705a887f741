"""Tests of the syslog parser: the Otus parser contract, then syslog specifics."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from otus_parser_example.parser import parse_message
from otus_parser_example.plugin import SPEC, SyslogOptions

from otus import PluginContext
from otus.testing import ParserContract, udp_datagram

RFC5424 = (
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
    b"\xef\xbb\xbfAn application event log entry..."
)
RFC3164 = b"<34>Oct 11 22:14:15 mymachine su[231]: 'su root' failed for lonvick on /dev/pts/8"


class TestSyslogContract(ParserContract):
    """Everything Otus expects of any parser, checked by the suite from otus.testing."""

    spec = SPEC
    options: ClassVar[dict[str, Any]] = {"ports": [514, 1514]}
    samples = (RFC5424, RFC3164, b"<13>1 - - - - - - no header fields at all")


def _parse(payload: bytes, **options: Any) -> list[Any]:
    parser = SPEC.factory(SyslogOptions(**options), PluginContext())
    return parser.parse([udp_datagram(payload, src="192.0.2.10", dport=514)])


def test_rfc5424_message() -> None:
    (record,) = _parse(RFC5424)
    assert record.payload_type == "syslog"
    assert record.labels == {
        "syslog.facility": "local4",
        "syslog.severity": "notice",
        "syslog.hostname": "mymachine.example.com",
        "syslog.app": "evntslog",
    }
    assert record.payload["msgid"] == "ID47"
    assert record.payload["procid"] is None
    assert record.payload["structured_data"].startswith("[exampleSDID@32473 iut=")
    assert record.payload["message"] == "An application event log entry..."
    assert record.raw_payload == RFC5424
    assert record.src_ip == "192.0.2.10"


def test_rfc3164_message() -> None:
    (record,) = _parse(RFC3164)
    assert record.labels == {
        "syslog.facility": "auth",
        "syslog.severity": "crit",
        "syslog.hostname": "mymachine",
        "syslog.app": "su",
    }
    assert record.payload["procid"] == "231"
    assert record.payload["timestamp"] == "Oct 11 22:14:15"
    assert record.payload["message"] == "'su root' failed for lonvick on /dev/pts/8"


def test_message_without_header_is_all_message() -> None:
    (record,) = _parse(b"<0>kernel panic")
    assert record.labels == {"syslog.facility": "kern", "syslog.severity": "emerg"}
    assert record.payload["message"] == "kernel panic"


def test_structured_data_with_escaped_bracket() -> None:
    fields = parse_message(b'<14>1 - h a - - [x@1 k="a\\]b"][y@2 z="1"] msg')
    assert isinstance(fields, dict)
    assert fields["structured_data"] == '[x@1 k="a\\]b"][y@2 z="1"]'
    assert fields["message"] == "msg"


def test_include_message_off_keeps_labels() -> None:
    (record,) = _parse(RFC3164, include_message=False)
    assert record.payload["message"] is None
    assert record.labels["syslog.app"] == "su"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "no_pri"),
        (b"hello", "no_pri"),
        (b"<192>1 - - - - - - x", "bad_pri"),
        (b"<013>x", "bad_pri"),
        (b"<13>1 2003-10-11T22:14:15Z host", "truncated"),
        (b"<13>1 - h a - - {oops} msg", "bad_structured_data"),
        (b'<13>1 - h a - - [x k="unterminated] msg', "bad_structured_data"),
    ],
)
def test_not_syslog_is_counted_by_reason(payload: bytes, reason: str) -> None:
    parser = SPEC.factory(SyslogOptions(), PluginContext())
    assert parser.parse([udp_datagram(payload, dport=514)]) == []
    assert parser.stats() == {"messages": 0, f"error.{reason}": 1}


def test_interest_is_the_configured_ports() -> None:
    parser = SPEC.factory(SyslogOptions(ports=[5514]), PluginContext())
    interest = parser.interest()
    assert interest.ports == frozenset({5514})
    assert interest.transports == frozenset({"udp"})


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        SyslogOptions(ports=[70000])
