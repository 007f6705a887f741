"""Message bodies: SDP, ``multipart/*`` (RFC 2046 5.1) with SDP parts, anything else by size."""

from __future__ import annotations

from typing import Any

from otus_parser_sip._sdp import parse_sdp
from otus_parser_sip._text import parse_params

__all__ = ["parse_body"]

MAX_PARTS = 16


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    semi = content_type.find(";")
    if semi < 0:
        return content_type.strip().lower(), {}
    return content_type[:semi].strip().lower(), parse_params(content_type[semi + 1 :])


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
