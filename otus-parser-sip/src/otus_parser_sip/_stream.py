"""Framing of SIP messages in reassembled TCP byte streams (RFC 3261 18.3, RFC 7118).

Each direction of a connection has a bounded buffer. Messages are cut by Content-Length; CRLF
keep-alives are skipped; after a gap or a mid-stream join the buffer is searched for the next
start line. A connection that starts with a TLS record is counted as encrypted and ignored; one
that upgrades to WebSocket is followed frame by frame.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator

from otus.parsing import StreamChunk

__all__ = ["StreamFramer", "find_start_line", "looks_like_tls"]

FlowKey = tuple[str, int, str, int]
_SIP20 = b"SIP/2.0"
#: RFC 3261 ``token`` characters (deleted by ``bytes.translate``: a token leaves nothing).
_TOKEN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"

#: The request methods of RFC 3261 and its extensions (RFC 3262, 3265, 3311, 3428, 3515, 3903,
#: 6086); the parser counts these under their own names.
REQUEST_METHODS = (
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
)  # fmt: skip
_METHODS = frozenset(m.encode() for m in REQUEST_METHODS)
_LONGEST_FIRST = sorted(_METHODS, key=len, reverse=True)  # PRACK before ACK
#: `` 200 `` after ``SIP/2.0``: a Status-Line even where a body without a line end precedes it.
_STATUS_CODE = re.compile(rb" [1-6][0-9][0-9] ")

MODE_SIP = 0
MODE_WS = 1
MODE_IGNORE = 2


def looks_like_tls(data: bytes | bytearray) -> bool:
    """A TLS record header (handshake/alert/appdata, version 3.x) or a DTLS one."""
    return len(data) >= 3 and 20 <= data[0] <= 23 and data[1] in (3, 0xFE)


def _is_request_line(line: bytes | bytearray) -> bool:
    sp = line.find(b" ")
    return (
        sp > 0 and not line[:sp].translate(None, _TOKEN) and line.rstrip().endswith(b" " + _SIP20)
    )


def find_start_line(buf: bytes | bytearray) -> int:
    """Offset of the first SIP start line, or -1 (scans ``SIP/2.0`` marks).

    Used after a gap or a mid-stream join, where the bytes before a start line may be the tail
    of a body that has no line end of its own (``...no line endMESSAGE sip:b@x SIP/2.0``): a
    request line whose method ends in a standard method starts at that method, and a
    Status-Line (``SIP/2.0 200 ``) is recognised without a line break before it.
    """
    pos = buf.find(_SIP20)
    while pos >= 0:
        after = buf[pos + 7 : pos + 8]
        if after == b" " and (
            pos == 0 or buf[pos - 1] == 0x0A or _STATUS_CODE.match(buf, pos + 7) is not None
        ):
            return pos  # Status-Line
        if after == b"\r":
            start = buf.rfind(b"\n", 0, pos) + 1
            uri = buf.rfind(b" ", start, pos - 1)  # the space before the Request-URI
            method = bytes(buf[start:uri]) if uri > start else b""
            if method not in _METHODS:
                cut = next((m for m in _LONGEST_FIRST if method.endswith(m)), b"")
                if cut and _is_request_line(buf[uri - len(cut) : pos + 7]):
                    return uri - len(cut)
            if _is_request_line(buf[start : pos + 7]):
                return start
        pos = buf.find(_SIP20, pos + 7)
    return -1


def _content_length(head: bytes) -> int:
    """Content-Length (or ``l``) of a header block; -1 when absent, -2 when not a number.

    The first header line so named wins (blanks between the name and its colon allowed). A
    line that starts with white space continues the header before it (RFC 3261 7.3.1), so it
    names nothing. Found by searching the lower-cased block for the two names at line starts:
    a few C calls, not a loop over the lines.
    """
    low = head.lower()
    at = _value_at(low, b"\r\ncontent-length", len(low))
    short = _value_at(low, b"\r\nl", at if at >= 0 else len(low))  # only on an earlier line
    if short >= 0:
        at = short
    if at < 0:
        return -1
    end = low.find(b"\r\n", at)
    value = low[at : end if end >= 0 else len(low)].strip()
    return int(value) if value.isdigit() and len(value) <= 9 else -2


def _value_at(low: bytes, mark: bytes, before: int) -> int:
    """Where the value of the first header line that ``mark`` (CRLF and a lower-case name)
    starts, before offset ``before``, begins (after its colon); -1 when there is none."""
    n = len(mark)
    k = low.find(mark, 0, before)
    while k >= 0:
        if low.startswith(b":", k + n):  # the usual spelling, no blanks before the colon
            return k + n + 1
        colon = low.find(b":", k + n)
        eol = low.find(b"\r\n", k + n)
        if colon >= 0 and (eol < 0 or colon < eol) and not low[k + n : colon].strip(b" \t"):
            return colon + 1
        k = low.find(mark, k + 2, before)
    return -1


class _Flow:
    __slots__ = ("buf", "frag", "mode", "need", "resync")

    def __init__(self, resync: bool) -> None:
        self.buf = bytearray()
        self.frag = bytearray()
        self.need = 0
        self.resync = resync
        self.mode = MODE_SIP


class StreamFramer:
    """Turns :class:`StreamChunk` objects into complete SIP messages (bytes)."""

    def __init__(
        self,
        errors: dict[str, int],
        *,
        max_message_size: int,
        buffer_limit: int,
        max_flows: int,
        websocket: bool,
    ) -> None:
        self.errors = errors
        self.max_message_size = max_message_size
        self.buffer_limit = max(buffer_limit, max_message_size)
        self.max_flows = max_flows
        self.websocket = websocket
        self._flows: OrderedDict[FlowKey, _Flow] = OrderedDict()
        self.gaps = 0
        self.resyncs = 0
        self.evicted = 0
        #: RFC 5626 CRLF keep-alives: a chunk of only CRLFs (up to 4 bytes) between messages.
        self.keepalives = 0

    def __len__(self) -> int:
        return len(self._flows)

    def _err(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def feed(self, chunk: StreamChunk) -> Iterator[tuple[bytes, bool]]:
        """Yield ``(message, framed_by_websocket)`` for every message the chunk completes."""
        key = chunk.flow
        fl = self._flows.get(key)
        data = chunk.data
        if fl is None:
            fl = _Flow(resync=chunk.gap != 0)
            self._flows[key] = fl
            if len(self._flows) > self.max_flows:
                self._flows.popitem(last=False)
                self.evicted += 1
            if looks_like_tls(data):
                self._err("encrypted")
                fl.mode = MODE_IGNORE
            elif self.websocket and chunk.gap == 0 and _is_ws_upgrade(data):
                fl.mode = MODE_WS
                hend = data.find(b"\r\n\r\n")
                data = data[hend + 4 :] if hend >= 0 else b""
        elif chunk.gap != 0:
            self.gaps += 1
            fl.buf.clear()
            fl.frag.clear()
            fl.need = 0
            fl.resync = True
            if fl.mode == MODE_WS:
                fl.mode = MODE_IGNORE  # frame boundaries are lost for good
                self._err("websocket_gap")
        if chunk.end:
            self._flows.pop(key, None)
        else:
            self._flows.move_to_end(key)
        if fl.mode == MODE_IGNORE or not data:
            return
        if fl.mode == MODE_WS:
            fl.buf += data
            yield from self._ws_frames(fl)
        elif fl.buf or fl.need or fl.resync:
            fl.buf += data
            yield from self._sip_messages(fl)
        elif len(data) <= 4 and not data.strip(b"\r\n"):
            self.keepalives += 1  # a ping (CRLF CRLF) or pong (CRLF), as over UDP
        else:
            yield from self._whole_messages(fl, data)
        if len(fl.buf) > self.buffer_limit:
            self._err("buffer_overflow")
            fl.buf.clear()
            fl.need = 0
            fl.resync = True

    def _whole_messages(self, fl: _Flow, data: bytes) -> Iterator[tuple[bytes, bool]]:
        """The common case, a chunk that starts a message (nothing buffered, no resync): the
        complete messages at its front are cut from ``data`` itself (a chunk that is one
        message is passed on as is); the rest, and anything unusual, goes through the buffer
        (``_sip_messages``, which counts errors and resyncs)."""
        off = 0
        n = len(data)
        while off < n:
            while data.startswith(b"\r\n", off):
                off += 2
            eol = data.find(b"\r\n", off)
            if eol < 0 or not _is_start_line(data[off:eol]):
                break
            hend = data.find(b"\r\n\r\n", off)
            if hend < 0:
                break
            cl = _content_length(data[off:hend])
            total = hend + 4 - off + max(cl, 0)
            if cl == -2 or total > self.max_message_size or off + total > n:
                break
            yield (data if total == n else data[off : off + total]), False
            off += total
        if off < n:
            fl.buf += memoryview(data)[off:] if off else data
            yield from self._sip_messages(fl)

    def _sip_messages(self, fl: _Flow) -> Iterator[tuple[bytes, bool]]:
        buf = fl.buf
        while True:
            if fl.need:
                if len(buf) < fl.need:
                    return
                msg = bytes(buf[: fl.need])
                del buf[: fl.need]
                fl.need = 0
                yield msg, False
                continue
            i = 0
            while buf[i : i + 2] == b"\r\n":
                i += 2
            if i:
                del buf[:i]
            if not buf:
                return
            if fl.resync:
                pos = find_start_line(buf)
                if pos < 0:
                    nl = buf.rfind(b"\n")
                    if nl >= 0:
                        del buf[: nl + 1]  # keep only a possibly partial last line
                    if len(buf) > self.max_message_size:
                        buf.clear()
                    return
                if pos:
                    del buf[:pos]
                self.resyncs += 1
                fl.resync = False
            eol = buf.find(b"\r\n")
            if eol >= 0 and not _is_start_line(buf[:eol]):
                self._err("bad_start_line")
                del buf[: eol + 2]
                fl.resync = True
                continue
            hend = buf.find(b"\r\n\r\n")
            if hend < 0:
                if len(buf) > self.max_message_size:
                    self._err("header_too_long")
                    buf.clear()
                    fl.resync = True
                return
            cl = _content_length(bytes(buf[:hend]))
            if cl == -2:
                self._err("bad_content_length")
                del buf[: hend + 4]
                fl.resync = True
                continue
            total = hend + 4 + max(cl, 0)
            if total > self.max_message_size:
                self._err("message_too_large")
                del buf[: hend + 4]
                fl.resync = True
                continue
            fl.need = total

    def _ws_frames(self, fl: _Flow) -> Iterator[tuple[bytes, bool]]:
        """RFC 6455 frames; each complete text/binary message is one SIP message (RFC 7118)."""
        buf = fl.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            ln = b1 & 0x7F
            off = 2
            if ln == 126:
                if len(buf) < 4:
                    return
                ln = int.from_bytes(buf[2:4], "big")
                off = 4
            elif ln == 127:
                if len(buf) < 10:
                    return
                ln = int.from_bytes(buf[2:10], "big")
                off = 10
            masked = b1 & 0x80
            if masked:
                off += 4
            if ln > self.max_message_size:
                self._err("message_too_large")
                fl.mode = MODE_IGNORE
                buf.clear()
                return
            if len(buf) < off + ln:
                return
            payload = bytes(buf[off : off + ln])
            if masked and ln:
                key = bytes(buf[off - 4 : off])
                mask = (key * (ln // 4 + 1))[:ln]
                payload = (
                    int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")
                ).to_bytes(ln, "little")
            del buf[: off + ln]
            opcode = b0 & 0x0F
            if opcode in (0, 1, 2):
                fl.frag += payload
                if b0 & 0x80:
                    msg = bytes(fl.frag)
                    fl.frag.clear()
                    if msg:
                        yield msg, True
            elif opcode == 8:
                fl.mode = MODE_IGNORE
                return


def _is_start_line(line: bytes | bytearray) -> bool:
    return line.startswith(b"SIP/2.0 ") or _is_request_line(line)


def _is_ws_upgrade(data: bytes) -> bool:
    """An HTTP Upgrade to WebSocket (request or 101 response) at the start of a connection."""
    if not (data.startswith((b"GET ", b"HTTP/1.1 101"))):
        return False
    hend = data.find(b"\r\n\r\n")
    return hend > 0 and b"websocket" in data[:hend].lower()
