"""Benchmarks "per core": this process on one CPU, the peer process it talks to on the others.

A rate "per core" is taken literally: the process under test (all its threads: the caller and
a reporter's sender thread alike) runs on one CPU, so its wall-clock rate is what one core
does; the broker it sends to runs on the remaining CPUs, so it neither takes that core's time
nor is counted in it. Unpinned, the threads of both processes wander between the two CPUs of
this machine and their caches (a record body written on one CPU is compressed on the other).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["pinned_apart"]


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []


def _pin(pid: int, cpus: set[int]) -> None:
    for tid in _threads(pid):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(tid, cpus)


@contextlib.contextmanager
def pinned_apart(peer_pid: int | None) -> Iterator[str]:
    """This process on the last CPU it may use, ``peer_pid`` on the others, for the duration;
    yields a note saying so (or why nothing was pinned). Threads started meanwhile inherit
    the CPU of the thread that starts them."""
    cpus = sorted(os.sched_getaffinity(0))
    if peer_pid is None or len(cpus) < 2:
        yield "not pinned (one CPU, or no peer process)"
        return
    mine, rest = cpus[-1], set(cpus[:-1])
    _pin(peer_pid, rest)
    _pin(os.getpid(), {mine})
    try:
        yield f"pinned: this process on CPU {mine}, the broker on CPU {','.join(map(str, rest))}"
    finally:
        _pin(os.getpid(), set(cpus))
        _pin(peer_pid, set(cpus))
