"""The installed distribution registers the ``syslog`` parser through its entry point."""

from __future__ import annotations

from importlib.metadata import distribution, entry_points

import otus


def test_entry_point_registers_the_parser() -> None:
    (ep,) = [e for e in entry_points(group="otus.plugins") if e.name == "syslog"]
    assert ep.value == "otus_parser_example.plugin"
    specs = list(ep.load().otus_parsers())
    assert [s.name for s in specs] == ["syslog"]
    assert isinstance(specs[0], otus.ParserSpec)
    assert distribution("otus-parser-example").version == "0.1.0"
