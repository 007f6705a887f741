"""Every task TOML shown in the docs validates as shown (a fragment inside a minimal task).

An operator copies these blocks into task files; one that ``otus validate`` refuses is a doc bug.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from otus._config.validate import validate_task
from otus._plugins.registry import load_registry
from otus.testing import need

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# plugin-guide.md walks through the example third-party plugin (docs/examples/), which only
# the example_plugin session installs; its tasks are tested there.
DOCS = sorted(
    {ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("otus-*/README.md")}
    - {ROOT / "docs" / "plugin-guide.md"}
)
BLOCK = re.compile(r"```toml\n(.*?)```", re.S)
TASK_KEYS = ("id", "capture", "parsers", "processors", "reporters")


def _blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            data = tomllib.loads(m.group(1))
            if any(key in data for key in TASK_KEYS):  # not a pyproject.toml or global config
                line = text[: m.start()].count("\n") + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", m.group(1)))
    return found


@pytest.mark.parametrize(("where", "block"), _blocks(), ids=[w for w, _ in _blocks()])
def test_task_toml_in_the_docs_validates(where: str, block: str) -> None:
    data: dict[str, Any] = {
        "id": "doc",
        "capture": {"name": "pcap", "config": {"path": "calls.pcap"}},
        "reporters": [{"name": "console"}],
        **tomllib.loads(block),
    }
    registry = load_registry()
    refs = [data["capture"], *[r for k in TASK_KEYS[2:] for r in data.get(k, [])]]
    kinds = ("capturer", "parser", "processor", "reporter")
    for name in {ref.get("name") for ref in refs} - {None}:  # no name: validation says so
        need(
            any(name in registry.names(kind) for kind in kinds),
            f"{where}: plugin {name!r} is not installed",
        )
    validate_task(data, source=where, registry=registry)
