"""Header names (compact forms, canonical spelling) and parsers of structured header values.

RFC 3261 7.3.3 and the IANA registry define the compact forms; names compare case-insensitively.
Each parser takes the (unfolded) header value as ``str`` and returns plain JSON-ready data.
"""

from __future__ import annotations

from typing import Any

from otus_parser_sip._text import QuoteError, parse_params, split_quoted, unquote
from otus_parser_sip._uri import parse_uri, split_hostport

__all__ = [
    "COMPACT",
    "LIST_HEADERS",
    "HeaderError",
    "canonical",
    "parse_cseq",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_via",
]

#: RFC 3261 7.3.3 plus the later registrations (RFC 3265, 3515, 3892, 3841, 4028, 4474).
COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "y": "identity",
    "a": "accept-contact",
    "d": "request-disposition",
    "j": "reject-contact",
    "n": "identity-info",
}

#: Headers whose comma-separated values are separate entries (RFC 3261 7.3.1).
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "p-asserted-identity",
        "path",
        "service-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
    }
)


class HeaderError(ValueError):
    """A structured header value cannot be read."""


def canonical(name: str) -> str:
    """Lower-case full name of a header (compact forms expanded)."""
    low = name.lower()
    return COMPACT.get(low, low) if len(low) == 1 else low


def parse_name_addr(value: str) -> dict[str, Any]:
    """``"Display" <uri;uparams>;hparams`` or ``uri;hparams`` (RFC 3261 20.10, 20.20, 20.39)."""
    s = value.strip()
    display = ""
    rest = s
    uri_ws = False
    if s.startswith('"'):
        try:
            end = _closing_quote(s)
        except QuoteError as exc:
            raise HeaderError("unterminated quoted display name") from exc
        display = unquote(s[: end + 1])
        rest = s[end + 1 :]
        lt = rest.find("<")
        if lt < 0:
            raise HeaderError("display name without <uri>")
    else:
        lt = rest.find("<")
    if lt >= 0:
        gt = rest.find(">", lt)
        if gt < 0:
            raise HeaderError("unterminated <uri>")
        if not display:
            display = rest[:lt].strip()
        uri = rest[lt + 1 : gt]
        params = rest[gt + 1 :]
        if uri[:1].isspace() or uri[-1:].isspace():
            # RFC 3261 25.1 allows no LWS inside <>; RFC 4475 3.1.2.14 (badaspec).
            uri = uri.strip()
            uri_ws = True
    else:
        semi = rest.find(";")
        uri = rest if semi < 0 else rest[:semi]
        params = "" if semi < 0 else rest[semi:]
        uri = uri.strip()
    out: dict[str, Any] = {"uri": parse_uri(uri)}
    if uri_ws:
        out["uri_whitespace"] = True
    if display:
        out["display"] = display
    p = params.strip()
    if p:
        try:
            hp = parse_params(p[1:] if p.startswith(";") else p)
        except QuoteError as exc:
            raise HeaderError("unterminated quoted parameter") from exc
        out["params"] = hp
        tag = hp.get("tag")
        if tag is not None:
            out["tag"] = tag
    return out


def _closing_quote(s: str) -> int:
    i = 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i
        else:
            i += 1
    raise QuoteError("unterminated quoted string")


def parse_name_addr_list(value: str) -> list[dict[str, Any]]:
    """Comma-separated name-addr values (Contact, Route, Record-Route, P-Asserted-Identity)."""
    if value.strip() == "*":
        return [{"star": True}]
    try:
        parts = split_quoted(value, ",")
    except QuoteError as exc:
        raise HeaderError("unterminated quoted string") from exc
    return [parse_name_addr(p) for p in parts if p.strip()]


def parse_via(value: str) -> dict[str, Any]:
    """``SIP / 2.0 / UDP host:port;branch=..;received=..;rport`` (RFC 3261 20.42)."""
    semi = value.find(";")
    head = value if semi < 0 else value[:semi]
    slash = head.rfind("/")
    if slash < 0:
        raise HeaderError("Via without sent-protocol")
    protocol = "".join(head[:slash].split())
    tail = head[slash + 1 :].split(None, 1)
    if len(tail) != 2:
        raise HeaderError("Via without sent-by")
    host, port = split_hostport(tail[1])
    out: dict[str, Any] = {"protocol": protocol, "transport": tail[0].upper(), "host": host}
    if port is not None:
        out["port"] = port
    if semi >= 0:
        try:
            params = parse_params(value[semi + 1 :])
        except QuoteError as exc:
            raise HeaderError("unterminated quoted Via parameter") from exc
        out["params"] = params
        for key in ("branch", "received", "rport"):
            if key in params:
                out[key] = params[key]
    return out


def parse_cseq(value: str) -> tuple[int, str]:
    """``number method``; the number must fit 32 bits (RFC 3261 8.1.1.5)."""
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise HeaderError("CSeq is not 'number method'")
    num = int(parts[0])
    if num > 0xFFFFFFFF:
        raise HeaderError("CSeq number exceeds 2**32-1")
    return num, parts[1]
