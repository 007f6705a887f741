"""Hostile records and values for the C encoder: each runs Python code while C reads it and
changes what C is reading. Shared by ``test_native.py`` (one regression test each) and the
sanitizer fuzz driver (``kafka_fuzz_driver.py``)."""

from __future__ import annotations

from typing import Any

from otus import Record


def fresh_labels(n: int, seed: int) -> dict[str, str]:
    """Labels whose strings only the dict holds (freed when it is cleared)."""
    return {f"sip.k{seed}-{i}-" + "x" * 40: "é" * (i + 30) + str(seed) for i in range(n)}


class LabelThief(Record):
    """Reading ``raw_payload`` (which C reads before the labels) replaces every label and frees
    the old strings."""

    @property
    def raw_payload(self) -> bytes:
        labels: dict[str, str] = Record.labels.__get__(self)
        labels.clear()
        labels.update(fresh_labels(3, 99))
        return b"raw"

    @raw_payload.setter
    def raw_payload(self, value: bytes) -> None:
        pass


#: The records list a :class:`ListThief` shrinks: report exactly this list.
VICTIMS: list[Any] = []


class ListThief(Record):
    """Reading ``task_id`` drops every record after the first from :data:`VICTIMS`."""

    @property
    def task_id(self) -> str:
        del VICTIMS[1:]
        return "t"

    @task_id.setter
    def task_id(self, value: str) -> None:
        pass


class Shifty:
    """A timestamp whose ``__index__`` empties the messages list and changes its value."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages
        self.calls = 0

    def __index__(self) -> int:
        self.calls += 1
        self.messages.clear()
        return (1 << 62) if self.calls % 2 else -(1 << 62)
