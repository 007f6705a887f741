"""A blocked reporter never stalls the run loop: its queue fills, drops are counted exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from otus import Record, Reporter
from otus._pipeline.reporter_queue import QueuedReporter
from otus._pipeline.stats import PluginCounters
from otus.queues import BoundedQueue
from otus.testing.packets import make_record


class Stuck(Reporter):
    """Blocks in report() until released (a destination that hangs). A fake on purpose: the
    point is a reporter that never returns, which no real destination does on demand."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.got: list[Record] = []

    def report(self, records: Sequence[Record]) -> None:
        self.release.wait(30)
        self.got.extend(records)


def test_blocked_reporter_fills_its_queue_and_drops_are_counted() -> None:
    inner = Stuck()
    queue: BoundedQueue[list[Record]] = BoundedQueue(4, "drop_newest", stage="report.stuck")
    counters = PluginCounters("report", "stuck")
    q = QueuedReporter(inner, queue, counters)
    q.start()
    batches = 200
    for _ in range(batches):
        q.report([make_record(), make_record()])  # returns although the reporter hangs
    st = queue.stats()
    assert st["put"] + st["dropped.full"] == 2 * batches
    assert st["dropped.full"] >= 2 * (batches - 4 - 1)
    inner.release.set()
    assert q.flush(10)
    q.close(10)
    assert len(inner.got) == queue.stats()["got"] == st["put"]


def test_report_errors_are_counted_on_the_slot() -> None:
    class Broken(Reporter):
        def report(self, records: Sequence[Record]) -> None:
            raise OSError("down")

    queue: BoundedQueue[list[Record]] = BoundedQueue(8, stage="report.broken")
    counters = PluginCounters("report", "broken")
    q = QueuedReporter(Broken(), queue, counters)
    q.start()
    for _ in range(3):
        q.report([make_record()])
    q.close(10)
    assert (counters.errors, counters.lost) == (3, 3)


class Slow(Reporter):
    """Takes ``delay`` seconds per batch (a destination slower than the source). A fake on
    purpose: the point is a reporter that cannot keep up within the flush timeout."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.got = 0
        self.closed_drops = 0
        self._closed = False

    def report(self, records: Sequence[Record]) -> None:
        time.sleep(self.delay)
        if self._closed:
            self.closed_drops += len(records)
        else:
            self.got += len(records)

    def close(self, timeout: float) -> None:
        self._closed = True


def test_what_a_slow_reporter_still_has_queued_at_close_is_counted() -> None:
    inner = Slow(0.05)
    queue: BoundedQueue[list[Record]] = BoundedQueue(64, "drop_newest", stage="report.slow")
    q = QueuedReporter(inner, queue, PluginCounters("report", "slow"))
    q.start()
    for _ in range(40):
        q.report([make_record() for _ in range(3)])
    q.close(0.2)  # far too short for 40 batches at 50 ms
    time.sleep(0.2)  # the batch the thread was handing over is counted by the reporter
    st = queue.stats()
    assert st["dropped.closed"] > 0
    assert inner.got + inner.closed_drops + st["dropped.closed"] + st["dropped.full"] == 120
    assert st["depth"] == 0


class Full(Reporter):
    """Never has room and delivers nothing (a destination that is down) until ``up``."""

    def __init__(self) -> None:
        self.up = False
        self.got = 0
        self.dropped = 0

    def wait_for_room(self, records: int, timeout: float) -> bool:
        time.sleep(min(timeout, 0.01))
        return self.up

    def report(self, records: Sequence[Record]) -> None:
        if self.up:
            self.got += len(records)
        else:
            self.dropped += len(records)

    def stats(self) -> dict[str, int]:
        return {"records": self.got}


def _until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_a_pausable_source_is_let_go_when_the_reporter_delivers_nothing() -> None:
    inner = Full()
    queue: BoundedQueue[list[Record]] = BoundedQueue(4, "block", block_timeout=None, stage="r")
    q = QueuedReporter(inner, queue, PluginCounters("report", "r"), pausable=True)
    q.stall_timeout = 1.0
    q.start()
    started = time.monotonic()
    q.report([make_record()])
    time.sleep(0.2)
    assert inner.dropped == 0 or time.monotonic() - started >= 1.0  # held (unless this lagged)
    assert _until(lambda: inner.dropped == 1)  # let go after the stall
    assert time.monotonic() - started >= 1.0
    q.report([make_record()])
    assert _until(lambda: inner.dropped == 2, 0.9)  # still stalled: not held a second again
    inner.up = True
    q.report([make_record(), make_record()])
    assert q.flush(10)
    assert inner.got == 2
    q.close(1)
