"""Value types shared by every configuration model: durations and byte sizes.

Both accept a number (seconds, bytes) or a string with a unit (``"30s"``, ``"5m"``, ``"1h30m"``,
``"64MiB"``, ``"1.5GB"``), so that operators write what they mean.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2, "mi": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4,
}  # fmt: skip


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like ``"1h30m"``, ``"250ms"``; raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text and _DURATION_PART.sub("", text) == "":
            return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
    raise ValueError(f"bad duration {value!r}: use seconds or a string like '30s', '5m', '1h30m'")


def parse_size(value: object) -> int:
    """Bytes from a number or a string like ``"64MiB"``, ``"1.5GB"``; raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string like '64MiB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m and m.group(2).lower() in _SIZE_UNITS:
            return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    raise ValueError(f"bad size {value!r}: use bytes or a string like '512KiB', '64MiB', '1GB'")


#: Seconds, given as a number or as a string with units.
Duration = Annotated[float, BeforeValidator(parse_duration)]
#: Bytes, given as a number or as a string with units.
ByteSize = Annotated[int, BeforeValidator(parse_size)]
