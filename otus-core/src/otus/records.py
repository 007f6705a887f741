"""Records: what parsers produce and processors and reporters consume.

A :class:`Record` is a plain slotted object (not a pydantic model): records are built on the hot
path. :func:`record_to_dict` is the one place that turns a record into its wire shape (design §4);
every reporter uses it.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any


def _json_loads() -> Callable[[bytes], Any]:
    """orjson's ``loads`` when installed (the SIP parser and the Kafka reporter need it: it is
    several times faster), else the standard library's; both give the same objects."""
    try:
        loads: Callable[[bytes], Any] = importlib.import_module("orjson").loads
    except ImportError:  # pragma: no cover - orjson is optional for the core
        return json.loads
    return loads


_loads = _json_loads()


def _json_str(text: str) -> bytes:
    """``text`` as a JSON string, as orjson writes it (UTF-8, only what must be escaped)."""
    return json.dumps(text, ensure_ascii=False).encode()


#: ``"name":`` of label names looked up in serialised labels (names come from configuration
#: and code: few; the cache is cleared should it ever grow past this).
_LABEL_KEYS: dict[str, bytes] = {}
_LABEL_KEYS_MAX = 4096
_BACKSLASH = 0x5C
_MEMBER_START = (0x7B, 0x2C)  # '{' ','

__all__ = ["Record", "record_to_dict"]


def _label_in_python(j: bytes, key: bytes) -> object:
    """The value of the member ``key`` (``"name":``) of serialised labels ``j``: its str,
    ``None`` when absent, ``NotImplemented`` when it is not a plain string (decode them all).

    A match is a member only right after '{' or ',': in valid JSON an escaped quote inside a
    string is preceded by a backslash, and a string ending at ',' or '{' is followed by ',',
    ':' or '}', never by the rest of a key. The C version (``_native/pyapi/labels.c``) is used
    when the core's extension is built; this one is its reference in the tests.
    """
    at = j.find(key)
    while at == 0 or (at > 0 and j[at - 1] not in _MEMBER_START):
        at = j.find(key, at + 1)
    if at < 0:
        return None
    start = at + len(key) + 1
    end = j.find(b'"', start)
    if j[start - 1 : start] != b'"' or end < 0 or _BACKSLASH in j[start:end]:
        return NotImplemented
    try:
        return j[start:end].decode()
    except UnicodeDecodeError:
        return NotImplemented


def _native_label_in() -> Callable[[bytes, bytes], object]:
    try:
        native = importlib.import_module("otus._native._pyapi")
    except ImportError:  # pragma: no cover - a source tree without the built extension
        return _label_in_python
    label_in: Callable[[bytes, bytes], object] = native.label_in
    return label_in


_label_in = _native_label_in()


class Record:
    """One observation: a parsed message (or a raw payload) with its addresses and labels.

    ``labels`` are ``{protocol}.{field}`` keys in lower case (``sip.method``) with string values.
    ``payload`` is the parser's structured view (JSON-serialisable) or ``None``.
    ``raw_payload`` is a copy of the L7 bytes (it outlives the capture buffer).

    A parser may hand the payload already serialised instead (``payload_json``: compact UTF-8
    JSON of an object, exactly as ``orjson.dumps`` writes it): it is decoded on the first read
    of ``payload``, and until then reporters can copy the bytes as they are
    (:meth:`serialized_payload`). Building and freeing ~200 objects per SIP message for a
    reporter that only serialises them again was most of the cost of a parse.

    The labels likewise (``labels_json``: a compact JSON object of strings, as ``orjson.dumps``
    writes the dict): decoded on the first read of ``labels``, copied as they are by reporters
    until then (:meth:`serialized_labels`). A dict of ~15 fresh strings per message was a third
    of a full SIP parse.
    """

    __slots__ = (
        "_labels",
        "_labels_json",
        "_payload",
        "_payload_json",
        "agent_id",
        "dst_ip",
        "dst_port",
        "payload_type",
        "pipeline_id",
        "protocol",
        "raw_payload",
        "src_ip",
        "src_port",
        "task_id",
        "ts_ns",
    )

    def __init__(
        self,
        *,
        ts_ns: int,
        src_ip: str,
        dst_ip: str,
        src_port: int,
        dst_port: int,
        protocol: int,
        payload_type: str,
        raw_payload: bytes = b"",
        payload: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        payload_json: bytes | None = None,
        labels_json: bytes | None = None,
        task_id: str = "",
        agent_id: str = "",
        pipeline_id: int = 0,
    ) -> None:
        self.task_id = task_id
        self.agent_id = agent_id
        self.pipeline_id = pipeline_id
        self.ts_ns = ts_ns
        self.src_ip = src_ip
        self.dst_ip = dst_ip
        self.src_port = src_port
        self.dst_port = dst_port
        self.protocol = protocol
        self.payload_type = payload_type
        self.raw_payload = raw_payload
        self._payload = payload
        self._payload_json = payload_json if payload is None else None
        if labels is None and labels_json is not None:
            self._labels: dict[str, str] | None = None
            self._labels_json: bytes | None = labels_json
        else:
            self._labels = labels if labels is not None else {}
            self._labels_json = None

    @property
    def labels(self) -> dict[str, str]:
        """The labels (decoded from ``labels_json`` on first read; change them in place)."""
        labels = self._labels
        if labels is None:
            j = self._labels_json
            labels = self._labels = _loads(j) if j is not None else {}
            self._labels_json = None  # the dict may be changed from now on
        return labels

    @labels.setter
    def labels(self, value: dict[str, str]) -> None:
        self._labels = value
        self._labels_json = None

    def label(self, name: str) -> str | None:
        """One label's value (``None`` when absent), read from the serialised labels without
        decoding them (a filter on ``sip.method`` needs one of ~15); else from the dict."""
        j = self._labels_json
        if j is None:
            labels = self._labels
            return labels.get(name) if labels is not None else None
        key = _LABEL_KEYS.get(name)
        if key is None:
            if len(_LABEL_KEYS) >= _LABEL_KEYS_MAX:
                _LABEL_KEYS.clear()
            key = _LABEL_KEYS[name] = _json_str(name) + b":"
        value = _label_in(j, key)
        if value is None or isinstance(value, str):
            return value
        return self.labels.get(name)  # NotImplemented: not a plain string, decode them all

    def setdefault_labels(self, pairs: Sequence[tuple[str, str]]) -> None:
        """``labels.setdefault(name, value)`` for each pair (the pipeline's own labels), on
        the serialised labels when there are some (appended as members, not decoded)."""
        j = self._labels_json
        if j is None:
            labels = self.labels
            for name, value in pairs:
                labels.setdefault(name, value)
            return
        extra: dict[str, bytes] = {}
        for name, value in pairs:
            if name not in extra and self.label(name) is None:
                extra[name] = _json_str(name) + b":" + _json_str(value)
        if self._labels_json is None:  # label() met a value it decodes: the dict it is
            labels = self.labels
            for name, value in pairs:
                labels.setdefault(name, value)
        elif extra:
            self._labels_json = (
                j[:-1] + (b"," if len(j) > 2 else b"") + b",".join(extra.values()) + b"}"
            )

    def serialized_labels(self) -> bytes | None:
        """The labels as the parser serialised them, while nobody has read them as a dict;
        else ``None`` (serialise :attr:`labels` then)."""
        return self._labels_json

    @property
    def payload(self) -> dict[str, Any] | None:
        """The structured payload (decoded from ``payload_json`` on first read)."""
        p = self._payload
        if p is None and self._payload_json is not None:
            p = self._payload = _loads(self._payload_json)
            self._payload_json = None  # the dict may be changed from now on
        return p

    @payload.setter
    def payload(self, value: dict[str, Any] | None) -> None:
        self._payload = value
        self._payload_json = None

    def serialized_payload(self) -> bytes | None:
        """The payload as the parser serialised it, while nobody has read it as a dict;
        else ``None`` (serialise :attr:`payload` then)."""
        return self._payload_json

    @property
    def raw_payload_len(self) -> int:
        return len(self.raw_payload)

    @property
    def timestamp_ms(self) -> int:
        return self.ts_ns // 1_000_000

    @property
    def key(self) -> str:
        """The Kafka message key of the Go original: ``{src_ip}:{src_port}-{dst_ip}:{dst_port}``."""
        return f"{self.src_ip}:{self.src_port}-{self.dst_ip}:{self.dst_port}"

    def __repr__(self) -> str:
        return (
            f"Record({self.payload_type} {self.src_ip}:{self.src_port} -> "
            f"{self.dst_ip}:{self.dst_port} labels={self.labels!r})"
        )


def record_to_dict(record: Record, *, include_raw: bool = True) -> dict[str, Any]:
    """The JSON value of a record, field for field as the Go Otus writes it (design §4)."""
    out: dict[str, Any] = {
        "task_id": record.task_id,
        "agent_id": record.agent_id,
        "pipeline_id": record.pipeline_id,
        "timestamp": record.timestamp_ms,
        "src_ip": record.src_ip,
        "dst_ip": record.dst_ip,
        "src_port": record.src_port,
        "dst_port": record.dst_port,
        "protocol": record.protocol,
        "payload_type": record.payload_type,
        "labels": record.labels,
        "raw_payload_len": record.raw_payload_len,
    }
    if include_raw:
        out["raw_payload"] = base64.b64encode(record.raw_payload).decode("ascii")
    out["payload"] = record.payload
    return out
