"""The ``sip`` parser: datagrams and TCP streams in, one record per SIP message out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orjson import dumps

from otus import Datagram, Interest, Parser, PluginContext, Record, StreamChunk
from otus_parser_sip._body import media_of
from otus_parser_sip._dialogs import DialogTable, _NativeDialogTable, native_table
from otus_parser_sip._message import FastResult, Limits, parse_message, parse_message_json
from otus_parser_sip._options import SipOptions
from otus_parser_sip._scan import (
    BatchFn,
    JsonFn,
    MediaSummary,
    batch_parser,
    fast_enabled,
    json_parser,
)
from otus_parser_sip._stream import REQUEST_METHODS, StreamFramer, looks_like_tls
from otus_parser_sip.media import MediaFlow, MediaFlowRegistry

__all__ = ["SipParser", "labels_of"]

PROTO_TCP = 6
PROTO_UDP = 17
_NS = 1_000_000_000
#: Request methods counted under their own name in ``method.<METHOD>``; others are ``other``
#: (a method is any token, so the key set must stay bounded).
#: In the order of ``KNOWN`` in ``_native/sip_batch.c`` (its method counts are indices).
METHOD_ORDER = (*REQUEST_METHODS, "other")
KNOWN_METHODS = frozenset(METHOD_ORDER[:-1])
_STATUS_CLASS = ("", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx")


def labels_of(p: dict[str, Any]) -> dict[str, str]:
    """The ``sip.*`` labels of one parsed message (design §4)."""
    frm = p["from"]
    to = p["to"]
    cseq = p["cseq"]
    labels = {
        "sip.call_id": p["call_id"],
        "sip.from_uri": frm["uri"]["raw"],
        "sip.to_uri": to["uri"]["raw"],
        "sip.cseq": f"{cseq['number']} {cseq['method']}",
        "sip.cseq_method": cseq["method"],
    }
    if p["kind"] == "request":
        labels["sip.method"] = p["method"]
        labels["sip.request_uri"] = p["request_uri"]["raw"]
    else:
        labels["sip.status_code"] = str(p["status_code"])
        labels["sip.method"] = cseq["method"]
    user = frm["uri"].get("user")
    if user is not None:
        labels["sip.from_user"] = user
    user = to["uri"].get("user")
    if user is not None:
        labels["sip.to_user"] = user
    tag = frm.get("tag")
    if tag is not None:
        labels["sip.from_tag"] = tag
    tag = to.get("tag")
    if tag is not None:
        labels["sip.to_tag"] = tag
    vias = p["via"]
    if vias:
        top = vias[0]
        labels["sip.via"] = f"{top['protocol']}/{top['transport']} {top['host']}" + (
            f":{top['port']}" if "port" in top else ""
        )
        branch = top.get("branch")
        if branch is not None:
            labels["sip.via_branch"] = branch
    ua = p.get("user_agent") or p.get("server")
    if ua is not None:
        labels["sip.user_agent"] = ua
    return labels


class SipParser(Parser):
    """SIP over UDP and TCP (and WebSocket), with a dialog table and a media flow registry."""

    payload_type = "sip"

    def __init__(self, options: SipOptions, context: PluginContext | None = None) -> None:
        self.options = options
        self.limits = Limits(
            max_message_size=options.max_message_size,
            max_headers=options.max_headers,
            max_header_line=options.max_header_line,
            parse_sdp=options.parse_sdp,
        )
        self.errors: dict[str, int] = {}
        self.messages = 0
        self.requests = 0
        self.responses = 0
        self.rejected = 0
        self.keepalives = 0
        self.trailing_octets = 0
        #: Requests per method (``method.<METHOD>``) and responses per class (``status_class.*``).
        self.by_method: dict[str, int] = {}
        self.by_class = [0] * 7
        limits = (
            options.max_dialogs,
            int(options.early_timeout_s * _NS),
            int(options.dialog_timeout_s * _NS),
            int(options.dialog_linger_s * _NS),
        )
        #: The C table (``_native/sip_dialog.c``) when the C paths are on, else pure Python.
        native = native_table(*limits) if fast_enabled() else None
        self.dialogs: DialogTable = DialogTable(*limits) if native is None else native
        self._dialog_labels = options.include_dialog_labels
        self._media_ttl_ns = int(options.media_timeout_s * _NS)
        self.media: MediaFlowRegistry | None = None
        if options.media_registry:
            self.media = MediaFlowRegistry(options.max_media_flows)
            if context is not None:
                context.shared["media_flows"] = self.media
        #: ``cfg`` of ``parse_batch``: datagrams, and messages framed from TCP streams.
        self._batch_cfg = (
            Record, Datagram, options.max_message_size, options.max_headers,
            options.max_header_line, options.parse_sdp, "sip", True,
        )  # fmt: skip
        self._stream_cfg = (*self._batch_cfg[:7], False)
        self._media_linger_ns = int(options.dialog_linger_s * _NS)
        #: ``dcfg`` of ``parse_batch``: the dialog table is updated in C (``sip_dialog.c``),
        #: and the media registry when it is the C table (else ``_media_ops``); None with the
        #: pure-Python table (then the batch path is not used).
        self._dialog_cfg: tuple[Any, ...] | None = None
        if isinstance(native, _NativeDialogTable):
            self._dialog_cfg = (
                native.store, native.by_outcome, options.max_dialogs,
                options.include_dialog_labels, self.media, self._media_ttl_ns,
                self._media_linger_ns,
            )  # fmt: skip
        self.framer = StreamFramer(
            self.errors,
            max_message_size=options.max_message_size,
            buffer_limit=options.tcp_buffer_limit,
            max_flows=options.max_tcp_flows,
            websocket=options.websocket,
        )

    def interest(self) -> Interest:
        return Interest(
            transports=frozenset({"udp", "tcp"}),
            ports=frozenset(self.options.ports),
            detector="sip",
            tcp_stream=True,
        )

    # -- input --------------------------------------------------------------------------------

    def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
        out: list[Record] = []
        fast = json_parser()
        batch = batch_parser() if self._dialog_cfg is not None else None
        if batch is None:
            for d in datagrams:
                self._datagram(d, out, fast)
            return out
        self._batch(datagrams, out, fast, batch, self._batch_cfg, self._datagram)
        return out

    def _batch(
        self,
        datagrams: Sequence[Datagram],
        out: list[Record],
        fast: JsonFn,
        batch: BatchFn,
        cfg: tuple[Any, ...],
        one: Callable[[Datagram, list[Record], JsonFn], None],
    ) -> None:
        """C handles runs of common messages (sip_batch.c); ``one`` the one it stops at."""
        dcfg = self._dialog_cfg
        assert dcfg is not None  # the batch path runs only on the C dialog table
        i = 0
        n = len(datagrams)
        while i < n:
            i, ops, counts, dcounts = batch(datagrams, i, out, cfg, dcfg)
            self._count(counts)
            if dcounts[0] or dcounts[2]:
                self.dialogs.add_counts(dcounts)
            if ops:
                self._media_ops(ops)
            if i < n:
                one(datagrams[i], out, fast)
                i += 1

    def _datagram(self, d: Datagram, out: list[Record], fast: JsonFn) -> None:
        """One datagram the batch path left to Python (or every one without the extension)."""
        data = bytes(d.payload)
        if len(data) <= 4 and not data.strip(b"\r\n\x00"):
            self.keepalives += 1  # RFC 5626 CRLF keep-alive
            return
        if 20 <= data[0] <= 23 and looks_like_tls(data):
            self._err("encrypted")
            return
        if data[:2] == b"\r\n":
            data = data.lstrip(b"\r\n")
        self._one(
            data, True, d.ts_ns, d.src_ip, d.dst_ip, d.src_port, d.dst_port, d.protocol, out, fast
        )

    def _count(self, c: tuple[int, ...]) -> None:
        """Add the counts of one ``parse_batch`` run (layout in ``sip_batch.c``)."""
        if not c[0] and not c[4]:
            return
        self.messages += c[0]
        self.requests += c[1]
        self.responses += c[2]
        self.trailing_octets += c[3]
        self.keepalives += c[4]
        by_class = self.by_class
        for k in range(1, 7):
            by_class[k] += c[4 + k]
        by_method = self.by_method
        for k in range(11, len(c), 2):
            method = METHOD_ORDER[c[k]]
            by_method[method] = by_method.get(method, 0) + c[k + 1]

    def parse_stream(self, chunks: Sequence[StreamChunk]) -> list[Record]:
        out: list[Record] = []
        fast = json_parser()
        batch = batch_parser() if self._dialog_cfg is not None else None
        # Messages framed from TCP go through the C batch path too (Content-Length framing:
        # datagram=False), in runs; WebSocket messages (datagram semantics) one by one.
        run: list[Datagram] = []
        for c in chunks:
            for msg, ws in self.framer.feed(c):
                if batch is not None and not ws:
                    ts, src, dst, sport, dport = c.ts_ns, c.src_ip, c.dst_ip, c.src_port, c.dst_port
                    run.append(Datagram(ts, src, dst, sport, dport, PROTO_TCP, msg))
                    continue
                if run:
                    self._stream_run(run, out, fast, batch)
                    run = []
                self._one(
                    msg, ws, c.ts_ns, c.src_ip, c.dst_ip, c.src_port, c.dst_port, PROTO_TCP, out,
                    fast,
                )  # fmt: skip
        if run:
            self._stream_run(run, out, fast, batch)
        return out

    def _stream_run(
        self, run: list[Datagram], out: list[Record], fast: JsonFn, batch: BatchFn | None
    ) -> None:
        assert batch is not None  # runs are collected only when the batch path is there
        self._batch(run, out, fast, batch, self._stream_cfg, self._stream_message)

    def _stream_message(self, d: Datagram, out: list[Record], fast: JsonFn) -> None:
        """One framed TCP message the batch path left to Python."""
        data = d.payload if isinstance(d.payload, bytes) else bytes(d.payload)
        self._one(
            data, False, d.ts_ns, d.src_ip, d.dst_ip, d.src_port, d.dst_port, PROTO_TCP, out, fast
        )

    def _err(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def _one(
        self,
        data: bytes,
        datagram: bool,
        ts_ns: int,
        src_ip: str,
        dst_ip: str,
        src_port: int,
        dst_port: int,
        protocol: int,
        out: list[Record],
        fast: JsonFn,
    ) -> None:
        """Parse one message and append its record (or count why it was rejected).

        The C fast path writes the payload JSON (body description included) directly; a body
        it declined is described in Python (``parse_message_json``); a message it declined goes
        through ``parse_message`` (dict payload, serialised here). Records are the same either
        way.
        """
        limits = self.limits
        if len(data) > limits.max_message_size:
            self._err("message_too_large")
            self.rejected += 1
            return
        r = fast(data, limits.max_headers, limits.max_header_line, datagram, limits.parse_sdp)
        if r is not None and r[4] is None:
            payload_json, labels, status, trailing, _, _, media = r  # the common case
        else:
            slow = self._slow(data, datagram, fast)
            if isinstance(slow, str):
                if self.options.report_errors:
                    out.append(
                        Record(
                            ts_ns=ts_ns, src_ip=src_ip, dst_ip=dst_ip, src_port=src_port,
                            dst_port=dst_port, protocol=protocol, payload_type="sip",
                            raw_payload=data, payload={"error": slow},
                            labels={"sip.error": slow},
                        )
                    )  # fmt: skip
                return
            payload_json, labels, status, trailing, media = slow
        self.messages += 1
        if status:
            self.responses += 1
            self.by_class[status // 100] += 1
        else:
            self.requests += 1
            method = labels["sip.method"]
            if method not in KNOWN_METHODS:
                method = "other"
            by_method = self.by_method
            by_method[method] = by_method.get(method, 0) + 1
        if trailing:
            self.trailing_octets += 1
            data = data[: len(data) - trailing]
        rec = Record(
            ts_ns=ts_ns, src_ip=src_ip, dst_ip=dst_ip, src_port=src_port, dst_port=dst_port,
            protocol=protocol, payload_type="sip", raw_payload=data,
            payload_json=payload_json, labels=labels,
        )  # fmt: skip
        out.append(rec)
        self._follow((rec, status, media))

    def _slow(self, data: bytes, datagram: bool, fast: JsonFn) -> FastResult | str:
        """What C declined: a body in Python, else the dict path (errors counted); the reject
        reason when the message is rejected."""
        r = parse_message_json(data, self.limits, datagram, fast)
        if r is not None:
            return r
        res = parse_message(data, self.limits, datagram=datagram)
        errors = self.errors
        for a in res.anomalies:
            errors[a] = errors.get(a, 0) + 1
        p = res.payload
        if p is None:
            reason = res.reject or "unknown"
            errors[reason] = errors.get(reason, 0) + 1
            self.rejected += 1
            return reason
        labels = labels_of(p)
        status = 0 if p["kind"] == "request" else p["status_code"]
        # The payload leaves as JSON (decoded only if someone reads it as a dict): a batch
        # keeps no payload objects alive, and reporters copy the bytes.
        return dumps(p), labels, status, p.get("trailing_octets", 0), media_of(p.get("body"))

    # -- dialogs and media ------------------------------------------------------------------

    def _follow(self, pending: Sequence[Any]) -> None:
        """The dialog table, dialog labels and media registry for ``pending``: ``record,
        status, media`` triples in message order (messages that cannot touch a dialog may be
        left out: ``DialogTable.update`` does nothing for them)."""
        dialogs = self.dialogs
        update = dialogs.update
        media_on = self.media is not None
        labels_on = self._dialog_labels
        it = iter(pending)
        for rec, status, media in zip(it, it, it, strict=True):
            ts_ns = rec.ts_ns
            dialog = update(rec.labels, status, ts_ns)
            if dialog is not None:
                if media and media_on:
                    self._register_media(media, dialog.call_id, ts_ns)
                if labels_on:
                    dialog.add_labels(rec.labels)
                if dialogs.ended:
                    self._calls_ended(ts_ns)

    def _media_ops(self, ops: list[Any]) -> None:
        """The media registry's share of a ``parse_batch`` run when the registry is not the C
        table (which the batch path feeds itself): ``is_end, call_id, ts_ns, media``
        quadruples in message order, what ``_follow`` does after each ``DialogTable.update``."""
        registry = self.media
        assert registry is not None
        for k in range(0, len(ops), 4):
            is_end, call_id, ts_ns, media = ops[k : k + 4]
            if is_end:
                registry.end_call(call_id, ts_ns + self._media_linger_ns)
            else:
                self._register_media(media, call_id, ts_ns)

    def _register_media(self, media: list[MediaSummary], call_id: str, ts_ns: int) -> None:
        """SDP offer or answer (``media``: ``_body.media_of`` of the body): each side announces
        where it receives RTP and RTCP."""
        registry = self.media
        assert registry is not None
        expires = ts_ns + self._media_ttl_ns
        for addr, port, kind, mux, rtcp_addr, rtcp_port, codecs in media:
            registry.register(
                MediaFlow(addr, port, "rtp+rtcp" if mux else "rtp", call_id, kind, codecs, expires)
            )
            if not mux:
                registry.register(
                    MediaFlow(rtcp_addr, rtcp_port, "rtcp", call_id, kind, codecs, expires)
                )

    def _calls_ended(self, ts_ns: int) -> None:
        ended = self.dialogs.ended
        if self.media is not None:
            linger = ts_ns + self._media_linger_ns
            for d in ended:
                self.media.end_call(d.call_id, linger)
        ended.clear()

    def tick(self, now_ns: int) -> list[Record]:
        dead = self.dialogs.expire(now_ns)
        if self.media is not None:
            for d in dead:
                self.media.remove_call(d.call_id)
            self.media.expire(now_ns)
        self.dialogs.ended.clear()
        return []

    def stats(self) -> dict[str, int]:
        out = {
            "messages": self.messages,
            "requests": self.requests,
            "responses": self.responses,
            "rejected": self.rejected,
            "keepalives": self.keepalives + self.framer.keepalives,
            "trailing_octets": self.trailing_octets,
            "tcp.flows": len(self.framer),
            "tcp.gaps": self.framer.gaps,
            "tcp.resyncs": self.framer.resyncs,
            "tcp.evicted": self.framer.evicted,
        }
        for method, n in self.by_method.items():
            out[f"method.{method}"] = n
        for k in range(1, 7):
            out[f"status_class.{_STATUS_CLASS[k]}"] = self.by_class[k]
        out.update(self.dialogs.stats())
        if self.media is not None:
            out.update(self.media.stats())
        for reason, n in self.errors.items():
            out[f"error.{reason}"] = n
        return out
