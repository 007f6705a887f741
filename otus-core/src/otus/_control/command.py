"""Remote commands over Kafka: message checks, HMAC signatures, timestamps, replay memory.

Pure functions and small classes with no Kafka import, so they are cheap and easy to test; the
consumer that uses them is :mod:`otus._control.kafka_channel`.

Signed bytes (documented in ``docs/kafka.md``): the command object **without** its
``signature`` field, serialised as JSON with sorted keys, no whitespace (``","`` and ``":"``
separators), non-ASCII characters kept as UTF-8 (``ensure_ascii=False``), encoded UTF-8. The
signature is the lower-case hex HMAC-SHA256 of those bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from otus._control.jsonrpc import decode_json

__all__ = [
    "VERSION",
    "Command",
    "CommandError",
    "RecentIds",
    "canonical_bytes",
    "parse_command",
    "parse_timestamp",
    "sign",
    "verify",
]

VERSION = "v1"


class CommandError(ValueError):
    """A command message that cannot be used; ``request_id`` is set when it carried one."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Command:
    """A structurally valid command (target, signature and age are checked by the caller)."""

    target: str
    command: str
    timestamp: float  # seconds since the epoch
    request_id: str
    payload: dict[str, Any]
    signature: str | None
    raw: dict[str, Any]  # the decoded message, for the signature check


def parse_command(value: bytes | None) -> Command:
    """Decode and check one message value; :class:`CommandError` says what is wrong."""
    if not value:
        raise CommandError("empty message")
    try:
        message = decode_json(value)
    except ValueError as exc:  # UnicodeDecodeError included
        raise CommandError(f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise CommandError("a command must be a JSON object")
    rid = message.get("request_id")
    request_id = rid if isinstance(rid, str) and rid else None
    if request_id is None:
        raise CommandError('"request_id" must be a non-empty string')
    if message.get("version") != VERSION:
        raise CommandError(f'"version" must be "{VERSION}"', request_id)
    target = message.get("target")
    if not isinstance(target, str) or not target:
        raise CommandError(
            '"target" is missing or empty (use a hostname, or "*" for all nodes)', request_id
        )
    command = message.get("command")
    if not isinstance(command, str) or not command:
        raise CommandError('"command" must be a non-empty string', request_id)
    payload = message.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise CommandError('"payload" must be an object (the command\'s parameters)', request_id)
    signature = message.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise CommandError('"signature" must be a hex string', request_id)
    try:
        timestamp = parse_timestamp(message.get("timestamp"))
    except ValueError as exc:
        raise CommandError(str(exc), request_id) from None
    return Command(target, command, timestamp, request_id, payload, signature, message)


def parse_timestamp(value: Any) -> float:
    """Seconds since the epoch from milliseconds (a number) or ISO 8601 text (zone: UTC if none)."""
    if isinstance(value, bool) or value is None:
        raise ValueError('"timestamp" must be milliseconds since the epoch or ISO 8601 text')
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError('"timestamp" must be a finite number')
        return float(value) / 1000.0
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f'"timestamp" is not ISO 8601: {value!r}') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise ValueError('"timestamp" must be milliseconds since the epoch or ISO 8601 text')


def canonical_bytes(message: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the message without ``signature``, canonical JSON."""
    body = {k: v for k, v in message.items() if k != "signature"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def sign(message: dict[str, Any], key: bytes) -> str:
    """The hex HMAC-SHA256 signature of ``message`` (what a console puts in ``signature``)."""
    return hmac.new(key, canonical_bytes(message), hashlib.sha256).hexdigest()


def verify(command: Command, key: bytes) -> bool:
    """True when the command carries a signature that matches ``key`` (constant-time check)."""
    if not command.signature:
        return False
    return hmac.compare_digest(sign(command.raw, key), command.signature.strip().lower())


class RecentIds:
    """The last ``size`` request ids seen (an LRU), so a replayed command is not run twice."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, request_id: str) -> bool:
        """True if the id was seen before; remembers it either way."""
        if request_id in self._ids:
            self._ids.move_to_end(request_id)
            return True
        self._ids[request_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)
