"""A one-line progress bar on a terminal for ``otus run`` on a file (no extra dependency).

A background thread redraws the line a few times a second from numbers the run loop already
keeps (``capturer.progress()`` and the packet counter), so the hot path pays nothing for it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO


def human_bytes(n: float) -> str:
    """``1536`` → ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_count(n: float) -> str:
    """``1234567`` → ``1.23M``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def render(done: int, total: int | None, packets: int, elapsed: float, width: int) -> str:
    """The bar line: ``[####----]  42%  1.2 MiB / 3.0 MiB  12.0k pkts  3.4k pkt/s  ETA 0:07``."""
    rate = packets / elapsed if elapsed > 0 else 0.0
    tail = f"{human_count(packets)} pkts  {human_count(rate)} pkt/s"
    if total:
        frac = min(1.0, max(0.0, done / total))
        eta = ""
        if 0 < frac < 1 and elapsed > 0:
            left = int(elapsed * (1 - frac) / frac)
            eta = f"  ETA {left // 60}:{left % 60:02d}"
        text = f" {frac * 100:3.0f}%  {human_bytes(done)} / {human_bytes(total)}  {tail}{eta}"
        bar_width = max(10, min(40, width - len(text) - 3))
        filled = int(bar_width * frac)
        line = f"[{'#' * filled}{'-' * (bar_width - filled)}]{text}"
    else:
        line = f"{human_bytes(done)}  {tail}"
    return line[: max(0, width - 1)]


class ProgressBar:
    """Redraws :func:`render` on ``stream`` every ``interval`` seconds until :meth:`close`."""

    def __init__(
        self,
        stream: TextIO,
        progress: Callable[[], tuple[int, int | None]],
        packets: Callable[[], int],
        interval: float = 0.2,
    ) -> None:
        self._stream = stream
        self._progress = progress
        self._packets = packets
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otus-progress", daemon=True)
        self._start = time.monotonic()

    def start(self) -> ProgressBar:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def _draw(self) -> None:
        try:
            done, total = self._progress()
        except Exception:
            return
        width = shutil.get_terminal_size((80, 24)).columns
        line = render(done, total, self._packets(), time.monotonic() - self._start, width)
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            self._draw()

    def close(self) -> None:
        """Stop redrawing and erase the line (the summary follows)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        self._stream.write("\r\x1b[K")
        self._stream.flush()
