"""The reporter interface (design §3, stage 6).

A reporter owns its batching, retries and buffering. :meth:`Reporter.report` must return
quickly: a slow or dead destination never stalls capture. When the bounded buffer is full the
reporter drops and counts (``dropped.<reason>``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from otus.records import Record

__all__ = ["Reporter"]


class Reporter(abc.ABC):
    """Delivers record batches somewhere (console, Kafka, a file)."""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Connect or open the destination; called once before the first batch."""

    @abc.abstractmethod
    def report(self, records: Sequence[Record]) -> None:
        """Accept a batch without blocking beyond the reporter's bounded buffer."""

    def wait_for_room(self, records: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until ``records`` more records fit in the reporter's
        buffer; ``True`` when they do (always, for a reporter without one). The run loop calls
        it before :meth:`report` when the source can wait (a file): a full buffer then holds
        the source instead of dropping. ``False`` lets the caller decide to go on anyway."""
        return True

    def flush(self, timeout: float) -> bool:
        """Deliver what is buffered within ``timeout`` seconds; ``True`` when all went out."""
        return True

    def close(self, timeout: float) -> None:  # noqa: B027 - optional hook
        """Flush within ``timeout`` seconds, then release the destination."""

    def stats(self) -> dict[str, int]:
        """Plain counters: ``records``, ``errors``, ``dropped.<reason>``, ``buffer_records``."""
        return {}
