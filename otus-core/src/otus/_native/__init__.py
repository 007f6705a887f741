"""Lazy access to the compiled cffi module (never imported for listing or validation)."""

from __future__ import annotations

from typing import Any


def load() -> tuple[Any, Any]:
    """Return ``(ffi, lib)`` of the compiled extension, importing it on first use."""
    from otus._native._otus_native import ffi, lib  # type: ignore[import-not-found]

    return ffi, lib
