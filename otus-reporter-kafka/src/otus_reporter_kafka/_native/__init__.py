"""The optional C fast path (``_kafka_fast``, CPython API) of record bodies and records
sections; ``setup.py`` builds it when a C compiler is there. Without it the reporter uses the
Python encoding, which is the reference the C output is tested against byte for byte."""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType

__all__ = ["FAST"]


def _load() -> ModuleType | None:
    try:
        fast = importlib.import_module("otus_reporter_kafka._native._kafka_fast")
    except ImportError:  # built without a C compiler: the Python path does the same
        return None
    from otus import Record

    # Fields of otus.Record itself are read from its slots (subclasses through getattr); a
    # Record without these slots keeps getattr for all.
    with contextlib.suppress(TypeError):
        fast.set_record_type(Record)
    return fast


#: The ``_kafka_fast`` module, or ``None`` when it was not built.
FAST = _load()
