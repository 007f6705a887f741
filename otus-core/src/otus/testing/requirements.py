"""Declaring what a test needs: skipped on a developer machine, a failure in CI (``CI=true``).

A test whose component is missing must never pass silently in CI, so these helpers call
``pytest.fail`` there and ``pytest.skip`` elsewhere.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """True when running under CI (``CI`` set to anything but ``0``/``false``/empty)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def need(condition: bool, reason: str) -> None:
    """Fail (in CI) or skip (elsewhere) the calling test unless ``condition`` holds."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required component missing in CI: {reason}")
    pytest.skip(reason)


def need_tool(name: str) -> str:
    """Return the path of executable ``name`` or fail/skip the test."""
    path = shutil.which(name)
    need(path is not None, f"{name!r} is not installed (see README: make test installs it)")
    assert path is not None
    return path


def need_root() -> None:
    """Network namespaces and AF_PACKET need root (or CAP_NET_ADMIN/CAP_NET_RAW)."""
    need(os.geteuid() == 0, "needs root for network namespaces / AF_PACKET")
