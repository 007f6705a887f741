"""Message bodies: SDP, ``multipart/*`` (RFC 2046 5.1) with SDP parts, anything else by size."""

from __future__ import annotations

from typing import Any

from otus_parser_sip._scan import MediaSummary
from otus_parser_sip._sdp import parse_sdp
from otus_parser_sip._text import QuoteError, parse_params

__all__ = ["media_of", "parse_body"]

MAX_PARTS = 16


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    semi = content_type.find(";")
    if semi < 0:
        return content_type.strip().lower(), {}
    try:
        params = parse_params(content_type[semi + 1 :])
    except QuoteError:  # unterminated quoted parameter: no parameters (found by fuzzing)
        params = {}
    return content_type[:semi].strip().lower(), params


def parse_body(body: bytes, content_type: str, parse_sdp_bodies: bool) -> dict[str, Any]:
    """Describe a body; SDP is parsed, multipart split into parts (each described alike)."""
    mtype, params = _media_type(content_type)
    out: dict[str, Any] = {"type": mtype, "length": len(body)}
    if mtype == "application/sdp":
        if parse_sdp_bodies:
            out["sdp"] = parse_sdp(body)
    elif mtype.startswith("multipart/"):
        boundary = params.get("boundary")
        if boundary:
            out["parts"] = _multipart(body, boundary.encode("utf-8", "replace"), parse_sdp_bodies)
    return out


def _multipart(body: bytes, boundary: bytes, parse_sdp_bodies: bool) -> list[dict[str, Any]]:
    """Split on ``--boundary`` delimiter lines; stop at ``--boundary--``."""
    delim = b"--" + boundary
    parts: list[dict[str, Any]] = []
    pos = body.find(delim)
    while pos >= 0 and len(parts) < MAX_PARTS:
        start = pos + len(delim)
        if body[start : start + 2] == b"--":
            break
        nl = body.find(b"\n", start)
        if nl < 0:
            break
        nxt = body.find(b"\r\n" + delim, nl)
        end = nxt
        if nxt < 0:
            nxt = body.find(b"\n" + delim, nl)
            end = nxt
            if nxt < 0:
                break
        parts.append(_part(body[nl + 1 : end], parse_sdp_bodies))
        pos = body.find(delim, end)
    return parts


def _part(part: bytes, parse_sdp_bodies: bool) -> dict[str, Any]:
    hend = part.find(b"\r\n\r\n")
    skip = 4
    if hend < 0:
        hend = part.find(b"\n\n")
        skip = 2
    if part.startswith(b"\r\n"):
        hend, skip = 0, 2
    if hend < 0:
        return {"type": "", "length": len(part)}
    headers: dict[str, str] = {}
    for line in part[:hend].decode("utf-8", "replace").splitlines():
        colon = line.find(":")
        if colon > 0:
            headers[line[:colon].strip().lower()] = line[colon + 1 :].strip()
    ctype = headers.get("content-type", "text/plain")
    desc = parse_body(part[hend + skip :], ctype, parse_sdp_bodies)
    desc["headers"] = headers
    return desc


#: ``c=`` addresses that name no endpoint: the old way to put a call on hold (RFC 3264 8.4).
UNSPECIFIED = frozenset({"0.0.0.0", "::"})


def media_of(body: dict[str, Any] | None) -> list[MediaSummary] | None:
    """What the media registry needs of a body description: per SDP media with a port, an
    address (not ``0.0.0.0`` or ``::``) and not ``inactive``, ``(address, port, media,
    rtcp_mux, rtcp_address, rtcp_port, codecs)``; None when the body has no SDP.
    ``_native/sip_sdp.c`` builds the same list."""
    if body is None:
        return None
    if "sdp" in body:
        sdps = [body["sdp"]]
    elif "parts" in body:
        sdps = [x["sdp"] for x in body["parts"] if "sdp" in x]
    else:
        return None
    out: list[MediaSummary] = []
    for sdp in sdps:
        for m in sdp["media"]:
            port = m.get("port", 0)
            addr = m.get("address")
            if not port or not addr or addr in UNSPECIFIED or m.get("direction") == "inactive":
                continue
            codecs = {pt: e["encoding"] for pt, e in m.get("rtpmap", {}).items()}
            rtcp = m.get("rtcp", {})
            out.append((
                addr, port, m["media"], m.get("rtcp_mux", False), rtcp.get("address", addr),
                rtcp.get("port", port + 1), codecs,
            ))  # fmt: skip
    return out
