"""The syslog parser: one UDP datagram is one message (RFC 5426), in RFC 5424 or 3164 format."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import otus
from otus_parser_example.plugin import SyslogOptions

# RFC 5424 §6.2.1, table 1 and 2: the PRI value is facility * 8 + severity.
FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_PRI = re.compile(rb"<(\d{1,3})>")
# RFC 3164 §4.1.2: "Mmm dd hh:mm:ss" (day padded with a space), then the HOSTNAME.
_BSD_HEADER = re.compile(r"([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ")
# RFC 3164 §4.1.3: the TAG (alphanumeric), an optional "[pid]", then ":".
_BSD_TAG = re.compile(r"([\w./-]{1,48})(?:\[([^\]]*)\])?: ?")


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _split_structured_data(rest: str) -> tuple[str | None, str] | None:
    """RFC 5424 §6.3: ``-`` or ``[id k="v"]…`` (``]`` may be escaped in values); None: bad."""
    if rest.startswith("-"):
        return None, rest[2:]
    if not rest.startswith("["):
        return None
    i = 0
    in_value = False
    while i < len(rest):
        c = rest[i]
        if c == "\\" and in_value:
            i += 2
            continue
        if c == '"':
            in_value = not in_value
        elif c == "]" and not in_value and rest[i + 1 : i + 2] != "[":
            return rest[: i + 1], rest[i + 2 :]
        i += 1
    return None


def parse_message(data: bytes) -> dict[str, Any] | str:
    """The fields of one syslog message, or the reason (a short word) why it is not one.

    Bad input is expected on the wire, so it is a return value, not an exception.
    """
    pri = _PRI.match(data)
    if pri is None:
        return "no_pri"
    digits = pri.group(1)
    value = int(digits)
    if value > 191 or (len(digits) > 1 and digits.startswith(b"0")):
        return "bad_pri"
    text = data[pri.end() :].decode("utf-8", "replace")
    fields: dict[str, Any] = {
        "facility": FACILITIES[value >> 3],
        "severity": SEVERITIES[value & 7],
    }
    if text.startswith("1 "):  # RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP …
        parts = text.split(" ", 6)
        if len(parts) < 7:
            return "truncated"
        _, timestamp, hostname, app, procid, msgid, rest = parts
        sd_and_message = _split_structured_data(rest)
        if sd_and_message is None:
            return "bad_structured_data"
        sd, message = sd_and_message
        fields.update(
            version=1,
            timestamp=_nil(timestamp),
            hostname=_nil(hostname),
            app=_nil(app),
            procid=_nil(procid),
            msgid=_nil(msgid),
            structured_data=sd,
            message=message.removeprefix("\ufeff"),  # the BOM that marks UTF-8 (§6.4)
        )
        return fields
    # RFC 3164: a relay passes a message without a valid HEADER on as the whole MSG (§4.3.3).
    fields.update(version=0, timestamp=None, hostname=None, app=None, procid=None, msgid=None)
    header = _BSD_HEADER.match(text)
    if header is not None:
        fields["timestamp"], fields["hostname"] = header.groups()
        text = text[header.end() :]
        tag = _BSD_TAG.match(text)
        if tag is not None:
            fields["app"], fields["procid"] = tag.groups()
            text = text[tag.end() :]
    fields["structured_data"] = None
    fields["message"] = text
    return fields


class SyslogParser(otus.Parser):
    """Makes one ``syslog`` record per datagram; counts what it cannot parse by reason."""

    payload_type = "syslog"

    def __init__(self, options: SyslogOptions) -> None:
        self._ports = frozenset(options.ports)
        self._include_message = options.include_message
        self._messages = 0
        self._errors: dict[str, int] = {}

    def interest(self) -> otus.Interest:
        return otus.Interest(transports=frozenset({"udp"}), ports=self._ports)

    def parse(self, datagrams: Sequence[otus.Datagram]) -> list[otus.Record]:
        records: list[otus.Record] = []
        for dgram in datagrams:
            raw = bytes(dgram.payload)  # copy now: the capture buffer is reused after this call
            fields = parse_message(raw)
            if isinstance(fields, str):  # not syslog: count it by reason, never raise
                self._errors[fields] = self._errors.get(fields, 0) + 1
                continue
            labels = {
                f"syslog.{name}": fields[name]
                for name in ("facility", "severity", "hostname", "app")
                if fields[name] is not None
            }
            if not self._include_message:
                fields["message"] = None
            records.append(
                otus.Record(
                    ts_ns=dgram.ts_ns,
                    src_ip=dgram.src_ip,
                    dst_ip=dgram.dst_ip,
                    src_port=dgram.src_port,
                    dst_port=dgram.dst_port,
                    protocol=dgram.protocol,
                    payload_type=self.payload_type,
                    raw_payload=raw,
                    payload=fields,
                    labels=labels,
                )
            )
        self._messages += len(records)
        return records

    def stats(self) -> dict[str, int]:
        stats = {"messages": self._messages}
        stats.update({f"error.{reason}": n for reason, n in self._errors.items()})
        return stats
