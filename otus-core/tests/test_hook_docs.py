"""The plugin author guide documents every hook and matches the example it walks through."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from otus import hookspecs
from otus.testing import contracts, packets

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugin-guide.md"
EXCERPT = re.compile(r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)\n```", re.S)


def _hookspecs() -> list[str]:
    return sorted(
        name
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")
    )


def test_there_are_hooks_to_document() -> None:
    assert {"otus_parsers", "otus_reporters", "otus_task_started"} <= set(_hookspecs())


@pytest.mark.parametrize("name", _hookspecs())
def test_hook_is_documented_with_its_signature(name: str) -> None:
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    heading = f"### `{name}({params})`"
    assert heading in GUIDE.read_text(), f"docs/plugin-guide.md lacks the heading {heading}"


def test_guide_excerpts_are_the_example_code() -> None:
    excerpts = EXCERPT.findall(GUIDE.read_text())
    assert len(excerpts) >= 5
    for path, code in excerpts:
        source = (ROOT / path).read_text()
        assert code in source, f"an excerpt of {path} in docs/plugin-guide.md is out of date"


@pytest.mark.parametrize("name", sorted(set(contracts.__all__) | set(packets.__all__)))
def test_testing_helpers_are_documented(name: str) -> None:
    if name.isupper():  # constants are documented where they are defined
        return
    assert f"`{name}" in GUIDE.read_text(), f"otus.testing.{name} is not in docs/plugin-guide.md"
