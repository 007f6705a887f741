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


def _cpu_split() -> tuple[int, set[int]] | None:
    """The CPU for the process under test (the last one this process may use) and the others;
    ``None`` with a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], set(cpus[:-1])) if len(cpus) >= 2 else None


@contextlib.contextmanager
def pinned_apart(peer_pid: int | None, pid: int | None = None) -> Iterator[str]:
    """Process ``pid`` (this one by default) on one CPU, ``peer_pid`` on the others, for the
    duration; yields a note saying so (or why nothing was pinned). Threads started meanwhile
    inherit the CPU of the thread that starts them."""
    split = _cpu_split()
    if peer_pid is None or split is None:
        yield "not pinned (one CPU, or no peer process)"
        return
    mine, rest = split
    everything = rest | {mine}
    target = os.getpid() if pid is None else pid
    _pin(peer_pid, rest)
    _pin(target, {mine})
    try:
        who = "this process" if pid is None else "the worker"
        yield f"pinned: {who} on CPU {mine}, the broker on CPU {','.join(map(str, sorted(rest)))}"
    finally:
        _pin(target, everything)
        _pin(peer_pid, everything)
