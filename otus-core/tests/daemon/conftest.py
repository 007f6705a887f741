"""A real daemon per test (see otus.testing.daemon)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from otus.testing.daemon import DaemonProcess, free_port


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path, free_port())
    d.start()
    try:
        yield d
    finally:
        d.stop()
        subprocess.run(["pkill", "-9", "-f", f"otus-worker-.*{tmp_path.name}"], check=False)
