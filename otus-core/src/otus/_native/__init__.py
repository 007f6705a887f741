"""Lazy access to the compiled modules (never imported for listing or validation)."""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any


def load() -> tuple[Any, Any]:
    """Return ``(ffi, lib)`` of the compiled extension, importing it on first use."""
    from otus._native._otus_native import ffi, lib  # type: ignore[import-not-found]

    return ffi, lib


@functools.cache
def builders() -> ModuleType:
    """The C builders of ``Datagram`` and ``TcpSegment`` objects (``pyapi/build.c``): its
    ``datagrams`` and ``segments``, set up on first use."""
    from otus._decode.addresses import address_text
    from otus._decode.segments import TcpSegment
    from otus._native import _build  # type: ignore[attr-defined]
    from otus.parsing import Datagram

    _build.setup(Datagram, TcpSegment, address_text)
    module: ModuleType = _build
    return module
