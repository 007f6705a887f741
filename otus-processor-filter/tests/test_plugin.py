"""The distribution registers the ``filter`` processor through the ``otus.plugins`` group."""

from __future__ import annotations

from importlib.metadata import entry_points

from otus import ProcessorSpec
from otus_processor_filter import plugin


def test_entry_point_registers_the_filter_processor() -> None:
    (ep,) = [e for e in entry_points(group="otus.plugins") if e.name == "filter"]
    assert ep.value == "otus_processor_filter.plugin"
    specs = list(ep.load().otus_processors())
    assert [s.name for s in specs] == ["filter"]
    assert isinstance(specs[0], ProcessorSpec)
    assert specs[0] is plugin.SPEC
