"""Adding up worker statistics so that totals never go backwards.

A worker ships cumulative snapshots ``{"counters": {...}, "gauges": {...}}`` (see
docs/pipeline.md). When a worker dies its last counters are folded into the base of its
worker slot and the restarted worker counts from zero again: ``slot total = base + live``.
Gauges are summed over live workers only, so the gauges of a dead worker disappear with it.
"""

from __future__ import annotations

from typing import Any

GAUGES = "gauges"


def add_into(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add the numbers of ``part`` into ``total`` (nested dicts by key)."""
    for key, value in part.items():
        if isinstance(value, dict):
            add_into(total.setdefault(key, {}), value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def without_gauges(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k != GAUGES}


class TaskCounters:
    """The statistics of one task across all its worker slots and their restarts."""

    def __init__(self) -> None:
        self._base: dict[int, dict[str, Any]] = {}
        self._live: dict[int, dict[str, Any]] = {}

    def update(self, worker: int, snapshot: dict[str, Any]) -> None:
        self._live[worker] = snapshot

    def worker_exited(self, worker: int) -> None:
        last = self._live.pop(worker, None)
        if last is not None:
            add_into(self._base.setdefault(worker, {}), without_gauges(last))

    def per_worker(self) -> dict[int, dict[str, Any]]:
        """Monotonic totals of each worker slot (gauges: live workers only)."""
        out: dict[int, dict[str, Any]] = {}
        for worker in sorted(set(self._base) | set(self._live)):
            total: dict[str, Any] = {}
            add_into(total, self._base.get(worker, {}))
            add_into(total, self._live.get(worker, {}))
            out[worker] = total
        return out

    def total(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in self.per_worker().values():
            add_into(out, part)
        return out
