"""The tansu broker fixture speaks enough Kafka for the reporter: produce, consume, groups,
headers and every compression codec, with aiokafka as the client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from otus.testing.kafka import TansuBroker


async def _produce(broker: TansuBroker, topic: str, n: int, **kwargs: object) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, **kwargs)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(
                topic,
                f"value-{i}".encode(),
                key=f"key-{i % 7}".encode(),
                headers=[("seq", str(i).encode()), ("kind", b"test")],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(
    broker: TansuBroker, topic: str, n: int, *, group: str | None = None, timeout: float = 15.0
) -> list[tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=group is not None,
        session_timeout_ms=1500,
        heartbeat_interval_ms=200,
        rebalance_timeout_ms=1000,
    )
    await consumer.start()
    got: list[tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]] = []
    try:

        async def loop() -> None:
            while len(got) < n:
                batch = await consumer.getmany(timeout_ms=200)
                for msgs in batch.values():
                    got.extend((m.partition, m.key, m.value, tuple(m.headers)) for m in msgs)

        await asyncio.wait_for(loop(), timeout)
    finally:
        await consumer.stop()
    return got


def test_roundtrip_keys_values_headers(tansu_broker: TansuBroker) -> None:
    tansu_broker.create_topic("roundtrip", partitions=3)
    asyncio.run(_produce(tansu_broker, "roundtrip", 50))
    got = asyncio.run(_consume(tansu_broker, "roundtrip", 50))
    assert sorted(v for _, _, v, _ in got) == sorted(f"value-{i}".encode() for i in range(50))
    for _, key, value, headers in got:
        seq = int(value.removeprefix(b"value-")) if value else -1
        assert key == f"key-{seq % 7}".encode()
        assert headers == (("seq", str(seq).encode()), ("kind", b"test"))
    # the same key always lands on the same partition
    by_key: dict[bytes | None, set[int]] = {}
    for partition, key, _, _ in got:
        by_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_key.values())
    assert len({p for p, *_ in got}) > 1


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression(tansu_broker: TansuBroker, codec: str) -> None:
    asyncio.run(_produce(tansu_broker, f"comp-{codec}", 200, compression_type=codec))
    got = asyncio.run(_consume(tansu_broker, f"comp-{codec}", 200))
    assert sorted(v for _, _, v, _ in got) == sorted(f"value-{i}".encode() for i in range(200))


def test_consumer_group_commits_and_resumes(tansu_broker: TansuBroker) -> None:
    tansu_broker.create_topic("grouped", partitions=2)
    asyncio.run(_produce(tansu_broker, "grouped", 20))
    first = asyncio.run(_consume(tansu_broker, "grouped", 20, group="g1"))
    assert len(first) == 20

    async def committed() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=tansu_broker.bootstrap, group_id="g1")
        await consumer.start()
        try:
            return {p: await consumer.committed(TopicPartition("grouped", p)) for p in (0, 1)}
        finally:
            await consumer.stop()

    offsets = asyncio.run(committed())
    assert sum(o or 0 for o in offsets.values()) == 20
    # the group resumes after its commits: only new records are delivered
    asyncio.run(_produce(tansu_broker, "grouped", 5))
    second = asyncio.run(_consume(tansu_broker, "grouped", 5, group="g1"))
    assert len(second) == 5


def test_kill_and_restart_on_the_same_port(tansu_broker: TansuBroker) -> None:
    tansu_broker.create_topic("survivor", partitions=2)
    port, pid = tansu_broker.port, tansu_broker.pid
    assert pid is not None
    assert Path(f"/proc/{pid}/exe").resolve().name.startswith("tansu")
    tansu_broker.kill()
    assert not tansu_broker.running
    assert tansu_broker.pid is None
    tansu_broker.restart()
    assert tansu_broker.running
    assert tansu_broker.port == port
    assert tansu_broker.pid not in (None, pid)
    # storage is memory-only: the topic is re-created empty with its partitions
    asyncio.run(_produce(tansu_broker, "survivor", 10))
    got = asyncio.run(_consume(tansu_broker, "survivor", 10))
    assert {p for p, *_ in got} <= {0, 1}
    assert len(got) == 10
