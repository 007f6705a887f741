"""Small string scanners shared by the header parsers: quote-aware splitting and parameters.

No regular expressions: every function walks the string with ``str.find`` and slicing, and
takes a fast path when the value holds no quoted string.
"""

from __future__ import annotations

__all__ = ["parse_params", "split_quoted", "unquote"]


class QuoteError(ValueError):
    """A quoted string is not terminated (RFC 3261 25.1 ``quoted-string``)."""


def _quote_end(s: str, start: int) -> int:
    """Index of the closing quote of the quoted string opening at ``start`` (escapes honoured)."""
    i = start + 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    raise QuoteError("unterminated quoted string")


def split_quoted(s: str, sep: str) -> list[str]:
    """Split ``s`` on ``sep`` outside quoted strings and ``<...>`` brackets."""
    if '"' not in s and "<" not in s:
        return s.split(sep)
    out: list[str] = []
    start = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            i = _quote_end(s, i) + 1
            continue
        if c == "<":
            j = s.find(">", i)
            i = n if j < 0 else j + 1
            continue
        if c == sep:
            out.append(s[start:i])
            start = i + 1
        i += 1
    out.append(s[start:])
    return out


def unquote(s: str) -> str:
    """The content of a quoted string with ``\\x`` escapes resolved; other text unchanged."""
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
        if "\\" in s:
            out: list[str] = []
            i = 0
            while i < len(s):
                if s[i] == "\\" and i + 1 < len(s):
                    out.append(s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            s = "".join(out)
    return s


def parse_params(s: str) -> dict[str, str]:
    """``;name=value;flag`` into ``{"name": "value", "flag": ""}`` (names lower-cased)."""
    params: dict[str, str] = {}
    if not s:
        return params
    for part in split_quoted(s, ";"):
        if not part:
            continue
        eq = part.find("=")
        if eq < 0:
            name = part.strip().lower()
            if name:
                params[name] = ""
        else:
            params[part[:eq].strip().lower()] = unquote(part[eq + 1 :].strip())
    return params
