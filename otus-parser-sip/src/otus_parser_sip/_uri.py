"""URI parsing: ``sip:``/``sips:`` (RFC 3261 19.1), ``tel:`` (RFC 3966) and absolute URIs.

The result is a plain dict (JSON-ready). Unknown schemes keep their text; nothing raises.
"""

from __future__ import annotations

from typing import Any

from otus_parser_sip._text import parse_params

__all__ = ["parse_uri", "split_hostport"]


def split_hostport(hp: str) -> tuple[str, int | None]:
    """``host[:port]`` with IPv6 references (``[2001:db8::1]:5060``); a bad port gives None."""
    hp = hp.strip()
    if hp.startswith("["):
        end = hp.find("]")
        if end < 0:
            return hp, None
        host = hp[: end + 1]
        rest = hp[end + 1 :]
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        colon = hp.rfind(":")
        if colon < 0:
            return hp, None
        host, port_s = hp[:colon], hp[colon + 1 :]
    port_s = port_s.strip()
    if port_s.isdigit() and len(port_s) <= 5 and int(port_s) < 65536:
        return host, int(port_s)
    return host, None


def parse_uri(raw: str) -> dict[str, Any]:
    """Split a URI into scheme, user, host, port, params and headers."""
    raw = raw.strip()
    out: dict[str, Any] = {"raw": raw}
    colon = raw.find(":")
    if colon <= 0:
        out["scheme"] = ""
        return out
    scheme = raw[:colon].lower()
    out["scheme"] = scheme
    rest = raw[colon + 1 :]
    if scheme in ("sip", "sips"):
        at = rest.find("@")
        if at >= 0:
            userinfo = rest[:at]
            rest = rest[at + 1 :]
            pc = userinfo.find(":")
            if pc >= 0:
                out["user"] = userinfo[:pc]
                out["password"] = userinfo[pc + 1 :]
            else:
                out["user"] = userinfo
        q = rest.find("?")
        if q >= 0:
            out["headers"] = rest[q + 1 :]
            rest = rest[:q]
        semi = rest.find(";")
        hostport = rest if semi < 0 else rest[:semi]
        host, port = split_hostport(hostport)
        out["host"] = host
        if port is not None:
            out["port"] = port
        if semi >= 0:
            out["params"] = parse_params(rest[semi + 1 :])
    elif scheme == "tel":
        semi = rest.find(";")
        out["user"] = rest if semi < 0 else rest[:semi]
        if semi >= 0:
            out["params"] = parse_params(rest[semi + 1 :])
    else:
        out["opaque"] = rest
    return out
