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

#: How long ``close`` waits, after closing the reporter, for a ``report()`` call in progress.
_CLOSE_GRACE = 0.5
#: How often a batch waiting for the reporter's room looks whether the run stopped or ended.
_ROOM_SLICE = 0.2
#: A reporter that delivers nothing for this long no longer holds a pausable source.
_STALL_TIMEOUT = 30.0


def delivered(reporter: Reporter) -> int:
    """The records a reporter says it delivered (``stats()["records"]``; 0 when it fails)."""
    try:
        return int(reporter.stats().get("records", 0))
    except Exception:
        return 0


class QueuedReporter(Reporter):
    """Wraps ``inner``: ``report`` enqueues, a thread delivers in order."""

    def __init__(
        self,
        inner: Reporter,
        queue: BoundedQueue[list[Record]],
        counters: PluginCounters,
        *,
        pausable: bool = False,
    ) -> None:
        """``pausable``: the source can wait (a file), so each batch waits until the reporter
        has room for it (``Reporter.wait_for_room``) instead of being dropped by it; the
        queue, blocking too, then holds the run loop."""
        self.inner = inner
        self.queue = queue
        self.pausable = pausable
        #: seconds without a delivered record after which a pausable source is let go
        self.stall_timeout = _STALL_TIMEOUT
        self._stalled = False
        self._delivered_mark = -1
        # The slot's counters: errors (exceptions of the inner report()) and lost (their
        # records) are counted here, on the delivery thread, the run loop counts items_in.
        self.counters = counters
        # The weight of the batches handed to ``inner`` so far; with the queue's ``got_items``
        # (counted when a batch is taken, under the queue's lock) it tells a batch taken and
        # not yet delivered from none: no window in which a taken batch is invisible.
        self._done = 0
        self._done_cv = threading.Condition()
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
            try:
                if self.pausable:
                    self._await_room(len(batch))
                inner.report(batch)
            except Exception as exc:
                c = self.counters
                c.errors += 1
                c.lost += len(batch)
                if c.errors == 1 or c.errors % 1000 == 0:
                    log.error("reporter %s failed (%d times): %r", queue.stage, c.errors, exc)
            finally:
                with self._done_cv:
                    self._done += len(batch)
                    self._done_cv.notify_all()

    def _await_room(self, records: int) -> None:
        """Until the reporter has room for ``records``; not when the run stops or ends, nor
        while the reporter delivers nothing for ``stall_timeout`` seconds (a destination that
        is down): ``report`` then drops what does not fit, counted, as for a live source."""
        queue, inner = self.queue, self.inner
        if self._stalled:
            if delivered(inner) == self._delivered_mark:
                return  # still nothing delivered: do not hold the source again
            self._stalled = False
        since = time.monotonic()
        while not (queue.closed or queue.waiting_stopped):
            try:
                if inner.wait_for_room(records, _ROOM_SLICE):
                    return
            except Exception as exc:  # a plugin's bug: report() decides as for a live source
                log.error("reporter %s: wait_for_room failed: %r", queue.stage, exc)
                return
            now, done = time.monotonic(), delivered(inner)
            if done != self._delivered_mark:
                self._delivered_mark, since = done, now
            elif now - since >= self.stall_timeout:
                self._stalled = True
                log.warning(
                    "reporter %s delivered nothing for %.0f s: no longer holding the source "
                    "for it (what does not fit is dropped and counted)",
                    queue.stage, self.stall_timeout,
                )  # fmt: skip
                return

    def _wait_empty(self, timeout: float) -> bool:
        """Until every batch queued so far was handed to the reporter (``timeout`` at most)."""
        queue = self.queue

        def empty() -> bool:
            # a batch is either still queued (len) or taken (got_items) before it is done
            return not len(queue) and queue.got_items == self._done

        with self._done_cv:
            return self._done_cv.wait_for(empty, max(timeout, 0.0))

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        emptied = self._wait_empty(timeout)
        return self.inner.flush(max(0.0, deadline - time.monotonic())) and emptied

    def close(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout``; what is still queued then is dropped and
        counted (``dropped.closed`` of the queue; the batch the thread is handing over is the
        reporter's to deliver or count), so every record given to ``report`` is accounted for."""
        deadline = time.monotonic() + timeout
        self._wait_empty(timeout)
        self.queue.close()
        left = self.queue.discard()
        if left:
            log.warning(
                "reporter %s did not catch up within the flush timeout: %d queued records "
                "dropped (dropped.closed)", self.queue.stage, left,
            )  # fmt: skip
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.inner.close(max(0.0, deadline - time.monotonic()))
        # a report() still running now finds the reporter closed and counts what it holds
        self._thread.join(_CLOSE_GRACE)

    def stats(self) -> dict[str, int]:
        return self.inner.stats()
