"""Turning a record into one output line: JSON (the wire shape) or readable text."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from otus import Record, record_to_dict

__all__ = ["Formatter", "json_line", "text_line"]

Formatter = Callable[[Record], bytes]

_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
#: Fields shown first in text form, in this order, when a record has them.
_KEY_FIELDS = ("method", "status_code", "reason", "call_id", "cseq")


def json_line(include_raw: bool) -> Formatter:
    """A formatter writing :func:`otus.record_to_dict` as compact ASCII JSON plus a newline."""
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

    def fmt(record: Record) -> bytes:
        return (dumps(record_to_dict(record, include_raw=include_raw)) + "\n").encode("ascii")

    return fmt


def _quote(value: str) -> str:
    """Values come off the network: never let one inject terminal escapes or split a field."""
    if value and value.isprintable() and not any(c in value for c in ' "='):
        return value
    return json.dumps(value, ensure_ascii=not value.isprintable())


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _timestamp(ts_ns: int) -> str:
    secs, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ns // 1000:06d}Z"


def text_line(record: Record) -> bytes:
    """``TIME TYPE PROTO SRC -> DST key=value … len=N``; label prefixes of the type are cut."""
    prefix = record.payload_type + "."
    short = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in record.labels.items()}
    names = [k for k in _KEY_FIELDS if k in short]
    names += sorted(k for k in short if k not in _KEY_FIELDS)
    fields = " ".join(f"{_quote(k)}={_quote(short[k])}" for k in names)
    proto = _PROTOCOLS.get(record.protocol, str(record.protocol))
    line = (
        f"{_timestamp(record.ts_ns)} {_quote(record.payload_type)} {proto} "
        f"{_endpoint(record.src_ip, record.src_port)} -> "
        f"{_endpoint(record.dst_ip, record.dst_port)}"
        f"{' ' + fields if fields else ''} len={record.raw_payload_len}\n"
    )
    return line.encode("utf-8", "backslashreplace")
