"""The distribution registers the ``console`` reporter through the ``otus.plugins`` group."""

from __future__ import annotations

from importlib.metadata import entry_points

from otus import ReporterSpec
from otus_reporter_console import plugin


def test_entry_point_registers_the_console_reporter() -> None:
    (ep,) = [e for e in entry_points(group="otus.plugins") if e.name == "console"]
    assert ep.value == "otus_reporter_console.plugin"
    specs = list(ep.load().otus_reporters())
    assert [s.name for s in specs] == ["console"]
    assert isinstance(specs[0], ReporterSpec)
    assert specs[0] is plugin.SPEC
