"""The processor interface (design §3, stage 5): drop, keep or label record batches."""

from __future__ import annotations

import abc

from otus.records import Record

__all__ = ["Processor"]


class Processor(abc.ABC):
    """Sees every record batch between the parsers and the reporters."""

    @abc.abstractmethod
    def process(self, records: list[Record]) -> list[Record]:
        """Return the records to pass on (the same list, filtered or with labels changed)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources at the end of the pipeline."""

    def stats(self) -> dict[str, int]:
        """Plain counters, e.g. ``kept``, ``dropped.<rule>``."""
        return {}
