"""SDP (RFC 8866) bodies: session and media level, connection, rtpmap, rtcp, direction.

Only what a capture agent needs to follow media is interpreted; every other line is kept under
``attributes`` (``a=``) or ignored. Lines end in CRLF or LF.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DIRECTIONS", "parse_sdp"]

DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


def _number(s: str) -> int | None:
    """ASCII digits as an int; None for anything else, or beyond 19 digits (JSON's 64 bits)."""
    return int(s) if s.isdigit() and s.isascii() and len(s) <= 19 else None


def _connection(value: str) -> dict[str, Any] | None:
    """``c=IN IP4 192.0.2.1[/ttl]`` into ``{"addrtype", "address"}``."""
    parts = value.split()
    if len(parts) != 3:
        return None
    addr = parts[2]
    slash = addr.find("/")
    if slash >= 0:
        addr = addr[:slash]
    return {"nettype": parts[0], "addrtype": parts[1], "address": addr}


def parse_sdp(body: bytes) -> dict[str, Any]:
    """Parse an SDP body into session fields and a list of media descriptions."""
    text = body.decode("utf-8", "replace")
    session: dict[str, Any] = {}
    media: list[dict[str, Any]] = []
    attrs: list[str] = session.setdefault("attributes", [])
    cur: dict[str, Any] = session
    for line in text.split("\n"):
        if len(line) < 2 or line[1] != "=":
            continue
        kind = line[0]
        value = line[2:].rstrip("\r")
        if kind == "m":
            parts = value.split()
            cur = {"media": parts[0] if parts else "", "attributes": []}
            if len(parts) >= 3:
                port_s = parts[1]
                slash = port_s.find("/")
                if slash >= 0:
                    count = _number(port_s[slash + 1 :])
                    cur["port_count"] = 1 if count is None else count
                    port_s = port_s[:slash]
                port = _number(port_s)
                cur["port"] = 0 if port is None else port
                cur["proto"] = parts[2]
                cur["formats"] = parts[3:]
            media.append(cur)
            attrs = cur["attributes"]
        elif kind == "c":
            conn = _connection(value)
            if conn is not None:
                cur["connection"] = conn
        elif kind == "a":
            _attribute(cur, value)
            attrs.append(value)
        elif cur is session:
            if kind == "v":
                session["version"] = value
            elif kind == "o":
                o = value.split()
                if len(o) == 6:
                    session["origin"] = {
                        "username": o[0],
                        "sess_id": o[1],
                        "sess_version": o[2],
                        "nettype": o[3],
                        "addrtype": o[4],
                        "address": o[5],
                    }
            elif kind == "s":
                session["name"] = value
            elif kind == "t":
                session["timing"] = value
    sess_conn = session.get("connection")
    sess_dir = session.get("direction", "sendrecv")
    for m in media:
        conn = m.get("connection", sess_conn)
        if conn is not None:
            m["address"] = conn["address"]
        m.setdefault("direction", sess_dir)
    session["media"] = media
    return session


def _attribute(cur: dict[str, Any], value: str) -> None:
    """Interpret the attributes that locate and describe media."""
    if value in DIRECTIONS:
        cur["direction"] = value
        return
    colon = value.find(":")
    name = value if colon < 0 else value[:colon]
    arg = "" if colon < 0 else value[colon + 1 :].strip()
    if name == "rtpmap":
        sp = arg.find(" ")
        if sp > 0:
            enc = arg[sp + 1 :].strip().split("/")
            entry: dict[str, Any] = {"encoding": enc[0]}
            rate = _number(enc[1]) if len(enc) > 1 else None
            if rate is not None:
                entry["clock_rate"] = rate
            if len(enc) > 2:
                entry["channels"] = enc[2]
            cur.setdefault("rtpmap", {})[arg[:sp]] = entry
    elif name == "rtcp":
        parts = arg.split()
        rport = _number(parts[0]) if parts else None
        if rport is not None:
            rtcp: dict[str, Any] = {"port": rport}
            if len(parts) >= 4:
                rtcp["address"] = parts[3]
            cur["rtcp"] = rtcp
    elif name == "rtcp-mux":
        cur["rtcp_mux"] = True
