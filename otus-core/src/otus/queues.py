"""A bounded queue with a drop policy, counting every drop with its reason (design §3).

Otus never lets an unbounded buffer grow between two stages: when a consumer (a reporter's
sender thread, a slow terminal) falls behind, the queue either drops the newest item, drops the
oldest one, or blocks the producer for at most ``block_timeout`` seconds and then drops. Every
drop is counted under ``dropped.<reason>`` so that it shows up in the statistics with its stage.
Plugin authors use it from ``otus.queues``; it is thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, Literal, TypeVar, get_args

__all__ = ["DROP_POLICIES", "BoundedQueue", "DropPolicy"]

T = TypeVar("T")

#: How often a producer blocked without a time limit looks at :meth:`BoundedQueue.stop_waiting`.
_WAIT_SLICE = 0.1

#: ``drop_newest``: a full queue refuses the new item. ``drop_oldest``: it evicts the oldest
#: item to make room. ``block``: the producer waits up to ``block_timeout`` seconds for room
#: (without limit when ``None``, until :meth:`BoundedQueue.stop_waiting`), then the new item is
#: dropped.
DropPolicy = Literal["drop_newest", "drop_oldest", "block"]
DROP_POLICIES: tuple[str, ...] = get_args(DropPolicy)


class BoundedQueue(Generic[T]):
    """FIFO of at most ``maxsize`` items with a drop policy; drops are counted, never raised.

    ``size`` passed to :meth:`put` weighs an item (a batch of 500 records counts 500 in the drop
    counters) so that counters speak in records, not in opaque batches. ``stage`` names the queue
    in statistics (``report.console``).
    """

    def __init__(
        self,
        maxsize: int,
        policy: DropPolicy = "drop_newest",
        *,
        block_timeout: float | None = 1.0,
        stage: str = "queue",
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"queue {stage}: maxsize must be at least 1, got {maxsize}")
        if policy not in DROP_POLICIES:
            raise ValueError(f"queue {stage}: unknown drop policy {policy!r}; use {DROP_POLICIES}")
        self.maxsize = maxsize
        self.policy: DropPolicy = policy
        self.block_timeout = block_timeout
        self.stage = stage
        self._items: deque[tuple[T, int]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._no_wait = False  # stop_waiting(): blocked producers give up
        self.put_items = 0  # weighted items accepted
        self.got_items = 0  # weighted items handed to consumers
        self.dropped_full = 0  # drop_newest / drop_oldest on a full queue
        self.dropped_timeout = 0  # block policy: no room within block_timeout
        self.dropped_closed = 0  # put after close(), or still queued when discarded

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, *, size: int = 1) -> bool:
        """Enqueue ``item``; ``False`` when the item (not another) was dropped."""
        with self._cond:
            if self._closed:
                self.dropped_closed += size
                return False
            if len(self._items) >= self.maxsize:
                if self.policy == "drop_newest":
                    self.dropped_full += size
                    return False
                if self.policy == "drop_oldest":
                    _, old_size = self._items.popleft()
                    self.dropped_full += old_size
                elif not self._wait_for_room():
                    return self._drop_blocked(size)
            self._items.append((item, size))
            self.put_items += size
            self._cond.notify_all()
            return True

    def _wait_for_room(self) -> bool:
        """``block`` policy: wait (lock held) until there is room; ``False`` on timeout, close
        or :meth:`stop_waiting` (looked at every ``_WAIT_SLICE`` seconds)."""
        limit = self.block_timeout
        deadline = None if limit is None else time.monotonic() + limit
        while len(self._items) >= self.maxsize and not self._closed and not self._no_wait:
            left = (
                _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
            )
            if left <= 0:
                break
            self._cond.wait(left)
        return len(self._items) < self.maxsize and not self._closed

    def stop_waiting(self) -> None:
        """Producers blocked for room give up (their items counted ``dropped.timeout``) and no
        later one waits: the run is stopping. A plain attribute store, so a signal handler may
        call it while the producer holds the lock."""
        self._no_wait = True

    @property
    def waiting_stopped(self) -> bool:
        """:meth:`stop_waiting` was called."""
        return self._no_wait

    def _drop_blocked(self, size: int) -> bool:
        if self._closed:
            self.dropped_closed += size
        else:
            self.dropped_timeout += size
        return False

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item, waiting up to ``timeout`` seconds; ``None`` on timeout or when closed
        and empty."""
        with self._cond:
            if not self._items and not self._closed and timeout != 0:
                self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if not self._items:
                return None
            item, size = self._items.popleft()
            self.got_items += size
            self._cond.notify_all()
            return item

    def drain(self, max_items: int | None = None) -> list[T]:
        """Take up to ``max_items`` queued items (all when ``None``) without waiting."""
        with self._cond:
            n = len(self._items) if max_items is None else min(max_items, len(self._items))
            out: list[T] = []
            for _ in range(n):
                item, size = self._items.popleft()
                self.got_items += size
                out.append(item)
            if n:
                self._cond.notify_all()
            return out

    def close(self) -> None:
        """Refuse further items (counted as ``dropped.closed``) and wake every waiter."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def discard(self) -> int:
        """Drop every queued item, counted as ``dropped.closed`` (a consumer that stops before
        the queue is empty); returns their weight."""
        with self._cond:
            n = sum(size for _, size in self._items)
            self._items.clear()
            self.dropped_closed += n
            self._cond.notify_all()
            return n

    def stats(self) -> dict[str, int]:
        """``put``, ``got``, ``depth``, ``capacity`` and ``dropped.<reason>``."""
        return {
            "put": self.put_items,
            "got": self.got_items,
            "depth": len(self._items),
            "capacity": self.maxsize,
            "dropped.full": self.dropped_full,
            "dropped.timeout": self.dropped_timeout,
            "dropped.closed": self.dropped_closed,
        }
