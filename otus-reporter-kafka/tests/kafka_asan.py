"""Build the Kafka reporter's C extension with AddressSanitizer and UBSan into a directory.

Used by ``test_kafka_sanitizers.py``; the driver ``kafka_fuzz_driver.py`` loads the result in
a subprocess that preloads the ASan runtime (``otus.testing.sanitizers``).
"""

from __future__ import annotations

from pathlib import Path

from otus.testing.sanitizers import build_extension

NATIVE = Path(__file__).resolve().parents[1] / "src" / "otus_reporter_kafka" / "_native"


def sources() -> list[Path]:
    """The C files of ``_kafka_fast``: every ``*.c`` of ``_native``, as ``setup.py`` takes them."""
    return sorted(NATIVE.glob("*.c"))


def build(cc: str, out: Path, extra: tuple[str, ...] = ()) -> Path:
    """``_kafka_fast.so`` built with the sanitizers into ``out`` (``extra``: more flags)."""
    return build_extension(
        cc,
        sources(),
        out / "_kafka_fast.so",
        extra=("-std=c11", "-Wall", "-Wextra", *extra),
    )
