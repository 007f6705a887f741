"""Fixtures shared by the otus-core tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def fake_plugins_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``data/fakedist``: a dist-info directory (distribution ``otus-fake-plugins``)
    with working, broken and clashing entry points, found by importlib.metadata when the
    directory is on ``sys.path`` or ``PYTHONPATH``."""
    target = tmp_path_factory.mktemp("fakedist")
    shutil.copytree(DATA / "fakedist", target, dirs_exist_ok=True)
    return target


@pytest.fixture
def fake_plugins(fake_plugins_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the fake plugin distribution into this test's interpreter."""
    monkeypatch.syspath_prepend(str(fake_plugins_path))
    yield fake_plugins_path
    for name in [m for m in sys.modules if m.startswith("otus_fake_plugins")]:
        del sys.modules[name]
