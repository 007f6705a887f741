"""The optional C fast paths (``_native/sip_scan.c`` and the ``_sip_fast`` extension), lazily
imported.

``json_parser`` and ``batch_parser`` hand out the C writers (or stand-ins when the extension is
not built or the C paths are off); whatever they decline runs through the pure-Python reference.
``index_headers`` returns the header index and the canonical-name grouping in one C pass plus
slicing, or None when the extension is not built or the block needs the general Python path
(non-ASCII, folding, control characters, limits); the caller then runs the pure-Python scanner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

__all__ = [
    "SIP_NAMES",
    "available",
    "batch_parser",
    "fast_available",
    "fast_enabled",
    "index_headers",
    "json_parser",
    "set_enabled",
]

#: Canonical names by id; must match ``NAMES`` in ``sip_scan.c`` (same order).
SIP_NAMES = (
    "via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type",
    "max-forwards", "user-agent", "server", "expires", "reason", "subject", "supported",
    "allow", "event", "route", "record-route", "p-asserted-identity", "date",
    "content-encoding", "allow-events", "refer-to", "referred-by", "session-expires",
    "identity", "accept-contact", "request-disposition", "reject-contact", "identity-info",
    "authorization", "www-authenticate", "proxy-authenticate", "proxy-authorization",
    "require", "proxy-require", "unsupported", "accept",
)  # fmt: skip
_FIELDS = 5

_state: dict[str, Any] = {"loaded": False, "lib": None, "ffi": None, "enabled": True}


def _no_json(data: bytes, max_headers: int, max_line: int, datagram: bool, sdp: bool) -> None:
    return None


#: A media summary of ``_body.media_of``: ``(address, port, media, rtcp_mux, rtcp_address,
#: rtcp_port, codecs)``.
MediaSummary = tuple[str, int, str, bool, str, int, dict[str, str]]
#: ``(payload JSON (complete when the body is None, else without body and closing brace),
#: labels, status code or 0, trailing octets, body or None, Content-Type or None, media
#: summaries of a body C described or None)``: ``_native/sip_json.c`` and ``sip_sdp.c``.
JsonHead = tuple[
    bytes, dict[str, str], int, int, bytes | None, str | None, list[MediaSummary] | None
]
JsonFn = Callable[[bytes, int, int, bool, bool], JsonHead | None]
_json: dict[str, JsonFn] = {"fn": _no_json}
#: ``(next index, media ops [is_end, call_id, ts_ns, media, ...], counts, dialog counts)``:
#: ``_native/sip_batch.c`` and ``sip_dialog.c``.
BatchResult = tuple[int, list[Any], tuple[int, ...], tuple[int, ...]]
BatchFn = Callable[[Sequence[Any], int, list[Any], tuple[Any, ...], tuple[Any, ...]], BatchResult]
_batch: dict[str, BatchFn | None] = {"fn": None}


def _load() -> None:
    _state["loaded"] = True
    try:
        _sip_fast: Any = import_module("otus_parser_sip._native._sip_fast")
    except ImportError:
        pass
    else:
        _state["json"] = _sip_fast.parse_json
        _json["fn"] = _sip_fast.parse_json
        _state["batch"] = _sip_fast.parse_batch
        _batch["fn"] = _sip_fast.parse_batch
    try:
        from otus_parser_sip._native import _sip_native  # type: ignore[attr-defined]
    except ImportError:
        return
    _state["lib"] = _sip_native.lib
    _state["ffi"] = _sip_native.ffi


def available() -> bool:
    """True when the C extension is built and importable."""
    if not _state["loaded"]:
        _load()
    return _state["lib"] is not None


def fast_available() -> bool:
    """True when the C writers (``_sip_fast``) are built and importable."""
    if not _state["loaded"]:
        _load()
    return _state.get("json") is not None


def fast_enabled() -> bool:
    """True when the C writers are built and on (``set_enabled``): a parser made now uses the
    C dialog table."""
    return fast_available() and bool(_state.get("enabled", True))


def set_enabled(on: bool) -> None:
    """Use (default) or bypass both C paths; tests compare them with the pure-Python one."""
    if not _state["loaded"]:
        _load()
    _state["enabled"] = on
    _json["fn"] = (_state.get("json") or _no_json) if on else _no_json
    _batch["fn"] = _state.get("batch") if on else None


def json_parser() -> JsonFn:
    """``parse_json(data, max_headers, max_line, datagram, parse_sdp)`` of ``_sip_fast``, or a
    stand-in.

    It frames a message and writes its payload (body description included) as JSON in C; the
    result (see ``JsonHead``)
    equals ``orjson.dumps`` of the dict ``_message.parse_message`` builds, or it is None
    ("use the dict path"; the stand-in always says so). Fetched per batch, so that
    ``set_enabled`` applies at once.
    """
    if not _state["loaded"]:
        _load()
    return _json["fn"]


def batch_parser() -> BatchFn | None:
    """``parse_batch(datagrams, start, out, cfg, dcfg)`` of ``_sip_fast`` (``sip_batch.c``:
    the common case of ``SipParser.parse`` for a run of datagrams), or None when the extension
    is not built or the C paths are off. Fetched per batch, so that ``set_enabled`` applies."""
    if not _state["loaded"]:
        _load()
    return _batch["fn"]


def index_headers(
    data: bytes, hend: int, max_headers: int, max_line: int
) -> tuple[str, list[list[str]], dict[str, list[str]]] | None:
    """``(start_line, index, by_name)`` of ``data[:hend]``, or None to use the Python path."""
    if not _state["enabled"] or not available():
        return None
    ffi = _state["ffi"]
    out = ffi.new("int32_t[]", (max_headers + 1) * _FIELDS)
    n = _state["lib"].sip_scan(data, hend, out, max_headers, max_line)
    if n < 0:
        return None
    head = data[:hend].decode("ascii")
    eol = head.find("\r\n")
    start = head if eol < 0 else head[:eol]
    index: list[list[str]] = []
    by: dict[str, list[str]] = {}
    names = SIP_NAMES
    spans = ffi.unpack(out, n * _FIELDS)
    for k in range(0, n * _FIELDS, _FIELDS):
        name = head[spans[k] : spans[k + 1]]
        value = head[spans[k + 2] : spans[k + 3]]
        index.append([name, value])
        i = spans[k + 4]
        key = names[i] if i >= 0 else _lower(name)
        vals = by.get(key)
        if vals is None:
            by[key] = [value]
        else:
            vals.append(value)
    return start, index, by


def _lower(name: str) -> str:
    from otus_parser_sip._headers import canonical

    return canonical(name)
