"""Totals across worker restarts never go backwards; gauges of dead workers vanish."""

from __future__ import annotations

from otus._daemon.counters import TaskCounters


def test_monotonic_over_restart() -> None:
    c = TaskCounters()
    c.update(0, {"packets": 10, "drops": {"queue": 1}, "gauges": {"flows": 5}})
    c.update(1, {"packets": 3, "gauges": {"flows": 2}})
    assert c.total() == {"packets": 13, "drops": {"queue": 1}, "gauges": {"flows": 7}}
    c.worker_exited(0)
    assert c.total() == {"packets": 13, "drops": {"queue": 1}, "gauges": {"flows": 2}}
    c.update(0, {"packets": 4, "gauges": {"flows": 1}})  # the restarted worker counts from 0
    assert c.total()["packets"] == 17
    assert c.total()["gauges"] == {"flows": 3}
