"""A reporter behind a bounded queue on its own thread (design §3, "Backpressure").

The run loop hands record batches to :class:`QueuedReporter`, which only enqueues them; a
thread calls the real reporter's ``report``. A reporter that blocks (a stuck socket, a slow
third-party plugin) therefore never stalls capture: its queue fills and further batches are
dropped by the configured policy and counted (``queue.report.<name>.dropped.<reason>``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from otus._pipeline.stats import PluginCounters
from otus.queues import BoundedQueue
from otus.records import Record
from otus.reporting import Reporter

log = logging.getLogger("otus.pipeline")


class QueuedReporter(Reporter):
    """Wraps ``inner``: ``report`` enqueues, a thread delivers in order."""

    def __init__(
        self, inner: Reporter, queue: BoundedQueue[list[Record]], counters: PluginCounters
    ) -> None:
        self.inner = inner
        self.queue = queue
        # The slot's counters: errors (exceptions of the inner report()) and lost (their
        # records) are counted here, on the delivery thread, the run loop counts items_in.
        self.counters = counters
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name=f"otus-{queue.stage}", daemon=True)

    def start(self) -> None:
        self.inner.start()
        self._thread.start()

    def report(self, records: Sequence[Record]) -> None:
        self.queue.put(list(records), size=len(records))

    def _run(self) -> None:
        queue, inner = self.queue, self.inner
        while True:
            batch = queue.get(timeout=0.5)
            if batch is None:
                if queue.closed and not len(queue):
                    return
                continue
            self._idle.clear()
            try:
                inner.report(batch)
            except Exception as exc:
                c = self.counters
                c.errors += 1
                c.lost += len(batch)
                if c.errors == 1 or c.errors % 1000 == 0:
                    log.error("reporter %s failed (%d times): %r", queue.stage, c.errors, exc)
            finally:
                if not len(queue):
                    self._idle.set()

    def _wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.queue) or not self._idle.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._idle.wait(min(left, 0.05))
        return True

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        emptied = self._wait_empty(timeout)
        return self.inner.flush(max(0.0, deadline - time.monotonic())) and emptied

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._wait_empty(timeout)
        self.queue.close()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.inner.close(max(0.0, deadline - time.monotonic()))

    def stats(self) -> dict[str, int]:
        return self.inner.stats()
