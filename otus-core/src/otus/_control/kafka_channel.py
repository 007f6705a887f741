"""The remote command channel: commands from a Kafka topic, responses and heartbeats back.

Started by the daemon when ``otus.command_channel.enabled``; it runs the same methods as the
Unix socket (through the same :class:`~otus._control.jsonrpc.Dispatcher`), so both control
paths behave alike. aiokafka is imported only here, only when the channel runs. The channel
reconnects by itself when the broker is down at start or goes away. Message format and signing:
:mod:`otus._control.command` and ``docs/kafka.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from otus import __version__
from otus._control.command import (
    VERSION,
    Command,
    CommandError,
    RecentIds,
    parse_command,
    verify,
)
from otus._control.jsonrpc import INVALID_REQUEST, METHOD_NOT_FOUND, Dispatcher, Handler
from otus.errors import ConfigError
from otus.tls import TlsFilesError, client_context

__all__ = ["CommandChannel", "client_kwargs", "heartbeat_status", "load_hmac_key"]

log = logging.getLogger("otus.control.kafka")

#: Error codes of refusals specific to the channel (JSON-RPC server-error range).
UNAUTHENTICATED = -32010
FORBIDDEN = -32011

RECONNECT_MIN = 0.5
RECONNECT_MAX = 10.0
SEND_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
CLIENT_STOP_TIMEOUT = 2.0  # a producer flushing to a dead broker would wait for ever
EVENT_QUEUE = 1000
COUNTERS = (
    "received",
    "executed",
    "ignored_target",
    "expired",
    "duplicate",
    "malformed",
    "unauthenticated",
    "errors",
    "responses_failed",
    "heartbeats",
    "events",
    "events_dropped",
    "reconnects",
)


def client_kwargs(kafka: Any) -> dict[str, Any]:
    """aiokafka keyword arguments from ``settings.kafka``: brokers, client id, SASL, TLS."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": list(kafka.brokers),
        "client_id": kafka.client_id,
    }
    tls, sasl = kafka.tls, kafka.sasl
    if tls.enabled:
        try:
            context = client_context(
                tls.ca_file, tls.cert_file, tls.key_file, check_hostname=tls.check_hostname
            )
        except TlsFilesError as exc:
            raise ConfigError(f"otus.kafka.tls: {exc}") from None
        kwargs["ssl_context"] = context
    if sasl.mechanism:
        kwargs["security_protocol"] = "SASL_SSL" if tls.enabled else "SASL_PLAINTEXT"
        kwargs["sasl_mechanism"] = sasl.mechanism
        kwargs["sasl_plain_username"] = sasl.username
        kwargs["sasl_plain_password"] = sasl.password.get_secret_value()
    else:
        kwargs["security_protocol"] = "SSL" if tls.enabled else "PLAINTEXT"
    return kwargs


def load_hmac_key(channel: Any) -> bytes | None:
    """The shared HMAC key (inline or from ``hmac_key_file``, trailing newline stripped)."""
    if channel.hmac_key is not None:
        key: bytes = channel.hmac_key.get_secret_value().encode()
    elif channel.hmac_key_file is not None:
        try:
            key = Path(channel.hmac_key_file).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read command_channel.hmac_key_file {channel.hmac_key_file}: {exc}"
            ) from None
    else:
        return None
    if not key:
        raise ConfigError("the command channel HMAC key is empty")
    return key


class CommandChannel:
    """Consumes commands, answers them, sends heartbeats and task events."""

    def __init__(
        self,
        settings: Any,
        methods: Mapping[str, Handler],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        """``settings`` is the global :class:`~otus._config.settings.Settings`; ``status``
        gives the heartbeat body (version, uptime, tasks)."""
        channel = settings.command_channel
        self.hostname: str = settings.node.hostname
        self.topic: str = channel.topic
        self.response_topic: str = channel.response_topic
        self.group_id: str = channel.group_id or f"otus-{self.hostname}"
        self.ttl: float = channel.command_ttl
        self.allow_shutdown: bool = channel.allow_shutdown
        self.heartbeat = channel.heartbeat
        self.key = load_hmac_key(channel)
        self._kwargs = client_kwargs(settings.kafka)
        self._dispatcher = Dispatcher(methods)
        self._status = status
        self._recent = RecentIds()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._connected = False
        self._producer: Any = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENT_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the consumer (and the heartbeat sender) in the background; never blocks."""
        self._tasks.append(asyncio.create_task(self._run(), name="otus-command-channel"))
        if self.heartbeat.enabled:
            self._tasks.append(asyncio.create_task(self._beat(), name="otus-heartbeat"))
        log.info(
            "command channel: topic=%s group=%s responses=%s signed=%s",
            self.topic, self.group_id, self.response_topic, self.key is not None,
        )  # fmt: skip

    async def close(self) -> None:
        """Stop consuming and close the clients (cancelled if that takes over CLOSE_TIMEOUT)."""
        self._stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks[:1], timeout=CLOSE_TIMEOUT)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def stats(self) -> dict[str, int]:
        return {**self._counts, "connected": int(self._connected)}

    def task_event(self, task: Any) -> None:
        """TaskManager callback on every task state change: queued for the heartbeat topic."""
        if not self.heartbeat.enabled:
            return
        event = {
            "version": VERSION,
            "type": "task_event",
            "hostname": self.hostname,
            "task": task.summary(),
            "timestamp": _now_ms(),
        }
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            self._counts["events_dropped"] += 1

    # -- consumer -----------------------------------------------------------------------------

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        delay = RECONNECT_MIN
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(
                self.topic,
                group_id=self.group_id,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                **self._kwargs,
            )
            producer = AIOKafkaProducer(acks=1, **self._kwargs)
            try:
                await producer.start()
                self._producer = producer  # responses and heartbeats can go out already
                await consumer.start()
                self._connected = True
                delay = RECONNECT_MIN
                log.info("command channel connected to %s", self._kwargs["bootstrap_servers"])
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._counts["reconnects"] += 1
                log.warning("command channel: %s; reconnecting in %.1fs", _describe(exc), delay)
            finally:
                self._connected = False
                self._producer = None
                await _stop_client(producer)
                await _stop_client(consumer)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _consume(self, consumer: Any) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            for records in batches.values():
                for record in records:
                    await self.handle(record.value)
            if batches:
                await consumer.commit()

    async def handle(self, value: bytes | None) -> None:
        """Check one message and run it; every outcome is counted, none raises."""
        self._counts["received"] += 1
        try:
            cmd = parse_command(value)
        except CommandError as exc:
            self._counts["malformed"] += 1
            log.warning("command channel: malformed command: %s", exc)
            if exc.request_id is not None:
                await self._respond(exc.request_id, None, INVALID_REQUEST, f"malformed: {exc}")
            return
        if cmd.target not in (self.hostname, "*"):
            self._counts["ignored_target"] += 1
            return
        if self.key is not None and not verify(cmd, self.key):
            self._counts["unauthenticated"] += 1
            why = "bad signature" if cmd.signature else "unsigned command"
            log.warning("command channel: %s %s refused: %s", cmd.command, cmd.request_id, why)
            await self._respond(cmd.request_id, cmd.command, UNAUTHENTICATED, f"refused: {why}")
            return
        age = time.time() - cmd.timestamp
        if age > self.ttl or age < -self.ttl:
            self._counts["expired"] += 1
            log.info("command channel: %s %s expired (%.0fs)", cmd.command, cmd.request_id, age)
            return
        if self._recent.seen(cmd.request_id):
            self._counts["duplicate"] += 1
            log.info("command channel: duplicate request %s ignored", cmd.request_id)
            return
        await self._execute(cmd)

    async def _execute(self, cmd: Command) -> None:
        if cmd.command == "daemon_shutdown" and not self.allow_shutdown:
            self._counts["errors"] += 1
            await self._respond(
                cmd.request_id, cmd.command, FORBIDDEN,
                "daemon_shutdown over Kafka is disabled (command_channel.allow_shutdown)",
            )  # fmt: skip
            return
        if cmd.command not in self._dispatcher.methods:
            self._counts["errors"] += 1
            known = ", ".join(self._dispatcher.methods)
            message = f"unknown command {cmd.command!r}; known: {known}"
            await self._respond(cmd.request_id, cmd.command, METHOD_NOT_FOUND, message)
            return
        request = {"jsonrpc": "2.0", "id": 1, "method": cmd.command, "params": cmd.payload}
        raw = await self._dispatcher.handle_line(json.dumps(request).encode())
        answer = json.loads(raw) if raw else {}
        log.info("command channel: ran %s (%s)", cmd.command, cmd.request_id)
        if "error" in answer:
            self._counts["errors"] += 1
            err = answer["error"]
            await self._respond(cmd.request_id, cmd.command, err["code"], err["message"])
        else:
            self._counts["executed"] += 1
            await self._respond(cmd.request_id, cmd.command, result=answer.get("result"))

    async def _respond(
        self,
        request_id: str,
        command: str | None,
        code: int | None = None,
        message: str = "",
        *,
        result: Any = None,
    ) -> None:
        body: dict[str, Any] = {
            "version": VERSION,
            "request_id": request_id,
            "hostname": self.hostname,
            "command": command,
            "ok": code is None,
            "timestamp": _now_ms(),
        }
        if code is None:
            body["result"] = result
        else:
            body["error"] = {"code": code, "message": message}
        if not await self._send(self.response_topic, body):
            self._counts["responses_failed"] += 1

    async def _send(self, topic: str, body: dict[str, Any]) -> bool:
        producer = self._producer
        if producer is None:
            return False
        value = json.dumps(body, separators=(",", ":"), default=str).encode()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(topic, value, key=self.hostname.encode()), SEND_TIMEOUT
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("command channel: cannot write to %s: %s", topic, _describe(exc))
            return False
        return True

    # -- heartbeats and events ----------------------------------------------------------------

    async def _beat(self) -> None:
        next_beat = time.monotonic()
        while True:
            timeout = max(0.0, next_beat - time.monotonic())
            try:
                event = await asyncio.wait_for(self._events.get(), timeout)
            except asyncio.TimeoutError:
                next_beat = time.monotonic() + self.heartbeat.interval
                if self._producer is None:
                    continue
                body = {
                    "version": VERSION,
                    "type": "heartbeat",
                    "hostname": self.hostname,
                    "otus_version": __version__,
                    **self._status(),
                    "timestamp": _now_ms(),
                }
                if await self._send(self.heartbeat.topic, body):
                    self._counts["heartbeats"] += 1
                continue
            if self._producer is None:
                self._counts["events_dropped"] += 1
            elif await self._send(self.heartbeat.topic, event):
                self._counts["events"] += 1
            else:
                self._counts["events_dropped"] += 1


def heartbeat_status(daemon: Any) -> dict[str, Any]:
    """The body of a heartbeat: uptime, pid and every task with its state."""
    return {
        "pid": daemon.pid,
        "uptime_seconds": round(time.time() - daemon.started_at, 3),
        "tasks": {t["id"]: t["state"] for t in daemon.tasks.summaries()},
    }


async def _stop_client(client: Any) -> None:
    """Stop an aiokafka client, bounded in time; a failure to stop is not an error here."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), CLIENT_STOP_TIMEOUT)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
