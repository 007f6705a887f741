"""Ownership of the memory-mapped TPACKET_V3 ring: which blocks user space holds, and when the
mapping may go.

A block handed out in a batch stays mapped until its batch is released, even after the capturer
is closed: :meth:`Ring.close` only marks the ring closed, and the last release unmaps it (a
use-after-free on task delete crashed the Go original).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any


class Ring:
    """The mapped ring: ``block_count`` blocks of ``block_size`` bytes starting at ``base``."""

    def __init__(self, ffi: Any, lib: Any, base: Any, block_size: int, block_count: int) -> None:
        self._ffi = ffi
        self._lib = lib
        self.base = base
        self.block_size = block_size
        self.block_count = block_count
        self.length = block_size * block_count
        self._held: set[int] = set()
        self._closed = False
        self._lock = threading.Lock()
        # Unmaps if the ring is dropped without close(); by then no batch can refer to it.
        self._unmap = weakref.finalize(self, lib.otus_afp_munmap, base, self.length)

    def block(self, index: int) -> Any:
        """Pointer to the first byte of block ``index``."""
        return self.base + index * self.block_size

    def is_held(self, index: int) -> bool:
        return index in self._held

    def hold(self, index: int) -> None:
        """User space now owns block ``index`` (it is inside a batch)."""
        with self._lock:
            self._held.add(index)

    def release(self, index: int) -> None:
        """Give block ``index`` back to the kernel; unmap if the ring is closed and now unused."""
        with self._lock:
            if index not in self._held:
                return
            self._held.discard(index)
            if self._unmap.alive:
                self._lib.otus_afp_block_release(self.block(index))
            if self._closed and not self._held:
                self._unmap()

    @property
    def held(self) -> int:
        """Blocks currently inside batches that were not released."""
        return len(self._held)

    @property
    def mapped(self) -> bool:
        return self._unmap.alive

    def close(self) -> None:
        """Unmap now if no batch holds a block, otherwise when the last one is released."""
        with self._lock:
            self._closed = True
            if not self._held:
                self._unmap()
