"""otus.queues.BoundedQueue: every drop policy, with every dropped item counted by reason."""

from __future__ import annotations

import threading
import time

import pytest

from otus.queues import BoundedQueue


def test_drop_newest_refuses_new_items_and_counts_them() -> None:
    q: BoundedQueue[str] = BoundedQueue(2, "drop_newest", stage="report.console")
    assert q.put("a")
    assert q.put("b")
    assert not q.put("c", size=10)  # a batch of 10 records is lost
    assert q.drain() == ["a", "b"]
    stats = q.stats()
    assert stats["dropped.full"] == 10
    assert stats["put"] == 2
    assert stats["got"] == 2
    assert stats["depth"] == 0


def test_drop_oldest_evicts_the_oldest_and_counts_its_size() -> None:
    q: BoundedQueue[str] = BoundedQueue(2, "drop_oldest")
    q.put("a", size=3)
    q.put("b", size=4)
    assert q.put("c", size=5)
    assert q.drain() == ["b", "c"]
    assert q.stats()["dropped.full"] == 3


def test_block_waits_for_room() -> None:
    q: BoundedQueue[int] = BoundedQueue(1, "block", block_timeout=10.0)
    q.put(1)
    taken: list[int | None] = []

    def consumer() -> None:
        time.sleep(0.05)
        taken.append(q.get(timeout=1.0))

    t = threading.Thread(target=consumer)
    t.start()
    assert q.put(2)  # blocks until the consumer took 1
    t.join()
    assert taken == [1]
    assert q.get(timeout=0) == 2
    assert q.stats()["dropped.timeout"] == 0


def test_block_drops_after_the_timeout() -> None:
    q: BoundedQueue[int] = BoundedQueue(1, "block", block_timeout=0.01)
    q.put(1)
    assert not q.put(2, size=7)
    assert q.stats()["dropped.timeout"] == 7
    assert q.drain() == [1]


def test_close_wakes_a_blocked_producer_and_refuses_items() -> None:
    q: BoundedQueue[int] = BoundedQueue(1, "block", block_timeout=30.0)
    q.put(1)
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(q.put(2)))
    t.start()
    time.sleep(0.05)
    q.close()
    t.join(5.0)
    assert results == [False]
    assert not q.put(3)
    assert q.stats()["dropped.closed"] == 2
    assert q.get(timeout=0) == 1  # what was queued can still be drained
    assert q.get(timeout=1.0) is None  # closed and empty: no wait


def test_get_times_out_with_none() -> None:
    q: BoundedQueue[int] = BoundedQueue(4)
    assert q.get(timeout=0.01) is None
    assert q.get(timeout=0) is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        BoundedQueue(0)
    with pytest.raises(ValueError, match="drop policy"):
        BoundedQueue(1, "drop_random")  # type: ignore[arg-type]


def test_block_without_a_time_limit_waits_until_room_or_stop_waiting() -> None:
    q: BoundedQueue[int] = BoundedQueue(1, "block", block_timeout=None)
    q.put(1)
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(q.put(2, size=3)))
    t.start()
    time.sleep(0.3)  # longer than any slice: still waiting
    assert t.is_alive()
    assert q.get(timeout=0) == 1  # room: the producer goes on
    t.join(5.0)
    assert results == [True]
    t = threading.Thread(target=lambda: results.append(q.put(4, size=5)))
    t.start()
    time.sleep(0.2)
    assert t.is_alive()
    q.stop_waiting()  # what Runner.stop does, from a signal handler too
    t.join(5.0)
    assert results == [True, False]
    assert q.waiting_stopped
    assert q.stats()["dropped.timeout"] == 5
    assert not q.put(6)  # no later producer waits
    assert q.stats()["dropped.timeout"] == 6
