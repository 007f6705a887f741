"""Lazy access to the compiled modules (never imported for listing or validation)."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any


def load() -> tuple[Any, Any]:
    """Return ``(ffi, lib)`` of the compiled extension, importing it on first use."""
    from otus._native._otus_native import ffi, lib  # type: ignore[import-not-found]

    return ffi, lib


@functools.cache
def builders() -> ModuleType:
    """The C builders of ``Datagram`` and ``TcpSegment`` objects (``pyapi/build.c``): the
    ``datagrams`` and ``segments`` of ``_pyapi``, set up on first use."""
    from otus._decode.addresses import address_text
    from otus._decode.segments import TcpSegment
    from otus.parsing import Datagram

    module = importlib.import_module("otus._native._pyapi")
    module.setup(Datagram, TcpSegment, address_text)
    return module
