"""One SIP message from bytes to its parsed payload (RFC 3261 7, 20, 25).

A scanner, not a grammar engine: the header block is decoded once, split on CRLF, unfolded and
indexed; the headers that identify a message or a call are then read into structured fields.
Problems are returned as reason strings: ``reject`` means the message cannot be trusted (start
line, framing or an identity header is broken); ``anomalies`` are flagged but the message is
still reported (RFC 4475 calls these "parse-lenient" in spirit).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from orjson import dumps

from otus_parser_sip._body import media_of, parse_body
from otus_parser_sip._headers import (
    HeaderError,
    canonical,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_via,
)
from otus_parser_sip._scan import JsonFn, MediaSummary, index_headers
from otus_parser_sip._text import QuoteError, split_quoted
from otus_parser_sip._uri import parse_uri

__all__ = [
    "FastResult",
    "Limits",
    "ParseResult",
    "header_end",
    "parse_message",
    "parse_message_json",
]

TOKEN_CHARS = string.ascii_letters + string.digits + "-.!%*_+`'~"
SIP20 = "SIP/2.0"
_CANON_CACHE: dict[str, str] = {}
_CANON_CACHE_MAX = 2048
_NAME_ADDR_LISTS = ("contact", "route", "record-route", "p-asserted-identity")
_SCALARS = (
    ("max-forwards", "max_forwards"),
    ("content-type", "content_type"),
    ("user-agent", "user_agent"),
    ("server", "server"),
    ("expires", "expires"),
    ("reason", "reason_header"),
    ("subject", "subject"),
    ("supported", "supported"),
    ("allow", "allow"),
    ("event", "event"),
)


@dataclass(frozen=True)
class Limits:
    """Bounds applied to every message (from the parser options)."""

    max_message_size: int = 65535
    max_headers: int = 256
    max_header_line: int = 8192
    parse_sdp: bool = True


class ParseResult:
    """``payload`` (None when rejected), the ``reject`` reason and the list of ``anomalies``."""

    __slots__ = ("anomalies", "payload", "reject")

    def __init__(
        self,
        payload: dict[str, Any] | None,
        reject: str | None,
        anomalies: list[str],
    ) -> None:
        self.payload = payload
        self.reject = reject
        self.anomalies = anomalies


def header_end(data: bytes | bytearray, start: int = 0) -> int:
    """Offset of the CRLFCRLF that ends the header section, or -1."""
    return data.find(b"\r\n\r\n", start)


def _canon(name: str) -> str:
    c = _CANON_CACHE.get(name)
    if c is None:
        c = canonical(name)
        if len(_CANON_CACHE) < _CANON_CACHE_MAX:
            _CANON_CACHE[name] = c
    return c


def _reject(reason: str, anomalies: list[str]) -> ParseResult:
    return ParseResult(None, reason, anomalies)


def parse_message(data: bytes, limits: Limits, *, datagram: bool) -> ParseResult:
    """Parse one message. ``datagram``: ``data`` is a whole UDP payload (body = the rest)."""
    anomalies: list[str] = []
    hend = data.find(b"\r\n\r\n")
    if hend < 0:
        if datagram and data.endswith(b"\r\n") and data.find(b"\r\n") < len(data) - 2:
            # The datagram ends after a header line: the empty line is missing (RFC 4475 baddn).
            anomalies.append("missing_blank_line")
            hend = len(data) - 2
            body_start = len(data)
        else:
            return _reject("truncated", anomalies)
    else:
        body_start = hend + 4
    head = _parse_head(data, hend, limits, anomalies)
    if isinstance(head, str):
        return _reject(head, anomalies)
    payload, cl = head

    # Framing: Content-Length against what the datagram carries (RFC 3261 18.3).
    body = data[body_start:]
    if cl is not None:
        payload["content_length"] = cl
        if cl > len(body):
            return _reject("content_length_mismatch", anomalies)
        if cl < len(body):
            payload["trailing_octets"] = len(body) - cl
            body = body[:cl]
    elif not datagram:
        anomalies.append("missing_content_length")
        body = b""
    if body:
        payload["body"] = parse_body(body, payload.get("content_type", ""), limits.parse_sdp)
    if anomalies:
        payload["anomalies"] = anomalies
    return ParseResult(payload, None, anomalies)


#: ``(payload JSON, labels, status code or 0, trailing octets, media summaries of the body or
#: None)`` of ``parse_message_json``.
FastResult = tuple[bytes, dict[str, str], int, int, list[MediaSummary] | None]


def parse_message_json(
    data: bytes, limits: Limits, datagram: bool, fast: JsonFn
) -> FastResult | None:
    """The C fast path of ``parse_message``: the payload as ``orjson.dumps`` would write it.

    ``fast`` is ``_scan.json_parser()``. None means "use ``parse_message``": the C code
    declines anything the reference would flag or reject and anything it is unsure of. A body
    C declined to describe (multipart, doubtful SDP) is described in Python and spliced in.
    """
    r = fast(data, limits.max_headers, limits.max_header_line, datagram, limits.parse_sdp)
    if r is None:
        return None
    head, labels, status, trailing, body, ctype, media = r
    if body is None:
        return head, labels, status, trailing, media  # C closed the object
    desc = parse_body(body, ctype or "", limits.parse_sdp)
    return (
        b"".join((head, b',"body":', dumps(desc), b"}")),
        labels,
        status,
        trailing,
        media_of(desc),
    )


def _parse_head(
    data: bytes, hend: int, limits: Limits, anomalies: list[str]
) -> str | tuple[dict[str, Any], int | None]:
    """The reference: start line, index, structured headers; the payload and Content-Length.

    Returns the reject reason instead when the head cannot be trusted.
    """
    payload: dict[str, Any] = {}
    fast = index_headers(data, hend, limits.max_headers, limits.max_header_line)
    if fast is not None:
        start, index, by = fast
        bad = _start_line(start, payload, anomalies)
        if bad is not None:
            return bad
        payload["headers"] = index
    else:
        grouped = _index_python(data, hend, limits, payload, anomalies)
        if isinstance(grouped, str):
            return grouped
        by = grouped

    bad = _identity(by, payload, anomalies)
    if bad is not None:
        return bad
    _other_headers(by, payload, anomalies)
    cls = by.get("content-length")
    if cls is None:
        return payload, None
    if len(cls) > 1 and len(set(cls)) > 1:
        return "conflicting_content_length"
    cl_s = cls[0]
    if not (cl_s.isdigit() and cl_s.isascii()) or len(cl_s) > 9:
        return "bad_content_length"
    return payload, int(cl_s)


def _index_python(
    data: bytes, hend: int, limits: Limits, payload: dict[str, Any], anomalies: list[str]
) -> str | dict[str, list[str]]:
    """The general scanner: start line, then the header index (folding undone) by name.

    Returns the reject reason, or the values grouped by canonical name.
    """
    head = data[:hend].decode("utf-8", "replace")
    lines = head.split("\r\n")
    if len(lines) > limits.max_headers + 1:
        return "too_many_headers"
    bad = _start_line(lines[0], payload, anomalies)
    if bad is not None:
        return bad

    # Header index in wire order, with obsolete line folding (RFC 3261 7.3.1) undone.
    index: list[list[str]] = []
    max_line = limits.max_header_line
    for line in lines[1:]:
        if len(line) > max_line:
            return "header_too_long"
        if not line:
            continue
        if line[0] == " " or line[0] == "\t":
            if index:
                index[-1][1] = f"{index[-1][1]} {line.strip()}"
            else:
                anomalies.append("bad_header_line")
            continue
        colon = line.find(":")
        if colon <= 0:
            anomalies.append("bad_header_line")
            continue
        index.append([line[:colon].rstrip(), line[colon + 1 :].strip()])
    payload["headers"] = index
    by: dict[str, list[str]] = {}
    for name, value in index:
        key = _canon(name)
        vals = by.get(key)
        if vals is None:
            by[key] = [value]
        else:
            vals.append(value)

    return by


def _start_line(line: str, payload: dict[str, Any], anomalies: list[str]) -> str | None:
    """Request-Line or Status-Line (RFC 3261 7.1, 7.2) into ``payload``; a reason on failure."""
    if line.startswith("SIP/"):
        parts = line.split(" ", 2)
        if parts[0] != SIP20:
            return "not_sip_2_0"
        code = parts[1] if len(parts) > 1 else ""
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            return "bad_status_code"
        payload["kind"] = "response"
        payload["status_code"] = int(code)
        payload["reason"] = parts[2] if len(parts) > 2 else ""
        return None
    toks = line.split()
    if len(toks) < 3:
        return "bad_start_line"
    version = toks[-1]
    if not version.startswith("SIP/"):
        return "bad_start_line"
    if version != SIP20:
        return "not_sip_2_0"
    method = toks[0]
    if method.strip(TOKEN_CHARS):
        return "bad_method"
    ruri = " ".join(toks[1:-1])
    if len(toks) != 3 or line != f"{method} {ruri} {version}":
        anomalies.append("request_line_whitespace")
    if ruri.startswith("<") and ruri.endswith(">"):
        anomalies.append("request_uri_in_brackets")
        ruri = ruri[1:-1]
    try:
        uri = parse_uri(ruri)
    except QuoteError:
        return "bad_start_line"  # unterminated quoted parameter value (found by fuzzing)
    if "headers" in uri:
        anomalies.append("request_uri_headers")
    payload["kind"] = "request"
    payload["method"] = method
    payload["request_uri"] = uri
    return None


def _single(by: dict[str, list[str]], key: str) -> str | None:
    """The value of a header that must appear once; repeats must agree (RFC 4475 3.4 multi01)."""
    vals = by.get(key)
    if vals is None:
        return None
    if len(vals) > 1 and len(set(vals)) > 1:
        raise HeaderError("conflicting_header")
    return vals[0]


def _identity(
    by: dict[str, list[str]], payload: dict[str, Any], anomalies: list[str]
) -> str | None:
    """Call-ID, From, To, CSeq and Via: the fields that tie a message to a call."""
    try:
        call_id = _single(by, "call-id")
        from_v = _single(by, "from")
        to_v = _single(by, "to")
        cseq_v = _single(by, "cseq")
    except HeaderError:
        return "conflicting_header"
    if call_id is None or from_v is None or to_v is None or cseq_v is None:
        return "missing_header"
    payload["call_id"] = call_id
    try:
        payload["from"] = parse_name_addr(from_v)
    except (HeaderError, QuoteError):
        return "bad_from"
    try:
        payload["to"] = parse_name_addr(to_v)
    except (HeaderError, QuoteError):
        return "bad_to"
    for key in ("from", "to"):
        if payload[key].get("uri_whitespace") or " " in payload[key]["uri"]["raw"]:
            anomalies.append("whitespace_in_uri")
    try:
        num, meth = parse_cseq(cseq_v)
    except HeaderError:
        return "bad_cseq"
    payload["cseq"] = {"number": num, "method": meth}
    if payload["kind"] == "request" and meth != payload["method"] and payload["method"] != "ACK":
        anomalies.append("cseq_method_mismatch")
    vias: list[dict[str, Any]] = []
    for value in by.get("via", ()):
        try:
            for part in split_quoted(value, ","):
                if part.strip():
                    vias.append(parse_via(part))
        except (HeaderError, QuoteError):
            anomalies.append("bad_via")
    if not vias:
        anomalies.append("missing_via")
    payload["via"] = vias
    return None


def _other_headers(by: dict[str, list[str]], payload: dict[str, Any], anomalies: list[str]) -> None:
    """Contact, routes, identity assertions and the common scalar headers."""
    for key in _NAME_ADDR_LISTS:
        vals = by.get(key)
        if vals is None:
            continue
        items: list[dict[str, Any]] = []
        for value in vals:
            try:
                items.extend(parse_name_addr_list(value))
            except (HeaderError, QuoteError):
                anomalies.append(f"bad_{key.replace('-', '_')}")
        payload[key.replace("-", "_")] = items
    for key, field in _SCALARS:
        vals = by.get(key)
        if vals is not None:
            payload[field] = vals[0] if len(vals) == 1 else ", ".join(vals)
    mf = payload.get("max_forwards")
    if mf is not None:
        if mf.isdigit() and mf.isascii() and len(mf) <= 10 and int(mf) <= 255:
            payload["max_forwards"] = int(mf)
        else:
            anomalies.append("bad_max_forwards")
    for value in by.get("contact", ()):
        if "<" not in value and "?" in value:
            anomalies.append("contact_headers_without_brackets")
    date = by.get("date")
    if date is not None and not date[0].endswith("GMT"):
        anomalies.append("bad_date")
