"""Lazy access to the compiled cffi module (never imported for listing plugins)."""

from __future__ import annotations

from typing import Any


def load() -> tuple[Any, Any]:
    """Return ``(ffi, lib)`` of the compiled extension, importing it on first use."""
    from otus_capture_afpacket._native._afpacket import (  # type: ignore[import-not-found]
        ffi,
        lib,
    )

    return ffi, lib
