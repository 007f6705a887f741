"""Every distribution carries the same project metadata, and its license text.

A node installs any subset of the distributions; each one must stand on its own as a published
package: the Apache-2.0 text it declares (the license requires a copy to go with the work), the
same version, Python range and classifiers as its siblings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = sorted(p.parent for p in ROOT.glob("otus-*/pyproject.toml"))
EXAMPLE = ROOT / "docs" / "examples" / "otus-parser-example"
CLASSIFIERS = [
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Topic :: System :: Networking :: Monitoring",
    "Typing :: Typed",
]


def project(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return data


def test_all_six_distributions_are_checked() -> None:
    assert len(DISTRIBUTIONS) == 6


@pytest.mark.parametrize("folder", [*DISTRIBUTIONS, EXAMPLE], ids=lambda p: p.name)
def test_each_distribution_ships_the_license_it_declares(folder: Path) -> None:
    assert project(folder)["license"] == "Apache-2.0"
    text = (folder / "LICENSE").read_text()
    assert text == (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda p: p.name)
def test_version_python_range_and_classifiers_agree(folder: Path) -> None:
    meta = project(folder)
    assert meta["version"] == project(ROOT / "otus-core")["version"]
    assert meta["requires-python"] == ">=3.10"
    assert meta["classifiers"] == CLASSIFIERS
    assert meta["readme"] == "README.md"
    # a plugin depends on the core series it was built for
    if folder.name != "otus-core":
        assert "otus-core>=0.1,<0.2" in meta["dependencies"]
