"""A blocked reporter never stalls the run loop: its queue fills, drops are counted exactly."""

from __future__ import annotations

import threading
from collections.abc import Sequence

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
