"""Replay at capture speed: sleep so that batches leave when their capture time says so."""

from __future__ import annotations

from collections.abc import Callable

#: Longest single sleep, so that ``stop()`` is noticed quickly.
SLEEP_SLICE = 0.05
#: Capture time one paced batch may span at speed 1.0 (scaled by the speed).
BATCH_SPAN = 0.01


class Pacer:
    """Maps capture timestamps to wall-clock deadlines at ``speed`` times real time.

    The first packet (after :meth:`reset`) anchors the mapping. ``clock`` and ``sleep`` are
    injectable so tests can check the requested sleeps without waiting.
    """

    def __init__(
        self,
        speed: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        stopped: Callable[[], bool],
    ) -> None:
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._stopped = stopped
        self._anchor: tuple[float, int] | None = None
        self.slept = 0.0

    @property
    def max_span_ns(self) -> int:
        """Capture time one batch may span so the replay stays smooth (``BATCH_SPAN`` of wall)."""
        return max(1, int(BATCH_SPAN * self.speed * 1e9))

    def reset(self) -> None:
        """Start a new mapping at the next packet (a new pass over the file)."""
        self._anchor = None

    def wait(self, ts_ns: int) -> None:
        """Sleep until the packet captured at ``ts_ns`` is due; return early on stop."""
        now = self._clock()
        if self._anchor is None:
            self._anchor = (now, ts_ns)
            return
        wall0, ts0 = self._anchor
        due = wall0 + (ts_ns - ts0) / 1e9 / self.speed
        while not self._stopped():
            left = due - now
            if left <= 0:
                return
            step = min(left, SLEEP_SLICE)
            self._sleep(step)
            self.slept += step
            now = self._clock()
